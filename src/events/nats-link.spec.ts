import { redactServers } from './nats-link';

describe('redactServers', () => {
  it('never writes the credentials of a server URL', () => {
    expect(redactServers(['nats://user:s3cret-pass@nats-1:4222', 'tls://tok3n@nats-2:4222', 'nats-3:4222', 'nats://nats-4:4222'])).toBe(
      'nats://***@nats-1:4222,tls://***@nats-2:4222,nats-3:4222,nats://nats-4:4222',
    );
  });
});
