import type { IncomingMessage } from 'node:http';
import { Logger } from '@nestjs/common';
import { strictMock } from '../../test/support/strict-mock';
import { loadConfig } from '../config/gateway-config';
import type { ConnectionRegistry } from '../messaging/connection-registry';
import type { MetricsService } from '../observability/metrics.service';
import type { SessionService } from '../session/session.service';
import type { Admission } from './admission';
import type { GatewaySocket } from './gateway-socket';
import type { MessageRouter } from './message-router';
import { WsGateway } from './ws.gateway';

/** A socket as far as the gateway's accept and close touch it: its events slot, state, pause/resume. */
function fakeSocket(): GatewaySocket {
  return { events: undefined, readyState: 1, pause: jest.fn(), resume: jest.fn(), terminate: jest.fn() } as unknown as GatewaySocket;
}

describe('WsGateway', () => {
  beforeAll(() => Logger.overrideLogger(false));

  function build() {
    const leave = jest.fn<Promise<void>, unknown[]>(() => Promise.resolve());
    const disconnects = jest.fn();
    const login = jest.fn(() => new Promise<void>(() => undefined)); // the login is still running
    const gateway = new WsGateway(
      strictMock<MessageRouter>({ login, answer: jest.fn() }, 'router'),
      strictMock<SessionService>({ leave }, 'sessions'),
      strictMock<MetricsService>({ disconnects: { inc: disconnects } as unknown as MetricsService['disconnects'], setConnectionSource: jest.fn() }, 'metrics'),
      strictMock<ConnectionRegistry>({}, 'connections'),
      strictMock<Admission>({ attach: jest.fn() }, 'admission'),
      loadConfig({}),
    );
    return { gateway, leave, disconnects, login };
  }

  it('ends a connection once, however many close events its socket emits (onClose ignores a repeat)', () => {
    const { gateway, leave, disconnects, login } = build();
    const socket = fakeSocket();
    const request = { headers: { authtoken: 'a-token' }, url: '/ws', socket: {} } as unknown as IncomingMessage;
    const client = gateway.accept(socket, request);
    expect(client).toBeDefined();
    expect(login).toHaveBeenCalledTimes(1);
    expect(gateway.openCount).toBe(1);
    // What GatewaySocket's emit does with a 'close' event: the accepted connection gets it.
    socket.events!.onSocketClose(1000);
    socket.events!.onSocketClose(1006);
    expect(gateway.openCount).toBe(0);
    expect(leave).toHaveBeenCalledTimes(1);
    expect(leave).toHaveBeenCalledWith(client, 1000);
    expect(disconnects).toHaveBeenCalledTimes(1);
    expect(disconnects).toHaveBeenCalledWith({ code: '1000' });
  });
});
