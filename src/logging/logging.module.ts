import type { DestinationStream } from 'pino';
import pino from 'pino';
import { DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { GatewayConfig } from '../config/gateway-config';

export interface LoggingOptions {
  /** Where log lines go instead of stdout (tests capture them here). */
  logDestination?: DestinationStream;
}

/** Paths that may hold a token if an object carrying a request is ever logged. */
const REDACT = [
  'authToken',
  '*.authToken',
  'token',
  '*.token',
  'req.headers.authtoken',
  'req.headers["sec-websocket-protocol"]',
  'req.url',
  'headers.authtoken',
];

function prettyAvailable(): boolean {
  try {
    require.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/**
 * One pino logger for the whole process: JSON lines with time, level and msg in production,
 * readable lines in development. Services log through Nest's Logger with their context.
 */
@Module({})
export class LoggingModule {
  static forRoot(config: GatewayConfig, options: LoggingOptions = {}): DynamicModule {
    const pretty = !config.production && !options.logDestination && prettyAvailable();
    const pinoOptions: pino.LoggerOptions = {
      level: config.logLevel,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
      base: { pid: process.pid },
      ...(pretty
        ? { transport: { target: 'pino-pretty', options: { singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } }
        : {}),
    };
    return {
      module: LoggingModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: options.logDestination ? [{ ...pinoOptions, autoLogging: false }, options.logDestination] : { ...pinoOptions, autoLogging: false },
          forRoutes: [],
        }),
      ],
    };
  }
}
