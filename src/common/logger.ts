import { pino, type LogFn, type Logger as PinoLogger } from 'pino';

/** What code needs from a logger; pino's root logger and Fastify's request loggers both fit. */
export interface Logger {
  level: string;
  fatal: LogFn; error: LogFn; warn: LogFn; info: LogFn; debug: LogFn; trace: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}
export type RootLogger = PinoLogger;

/** One structured logger per process; children carry component and request ids. */
export function createLogger(level: string = process.env.GUREUM_LOG_LEVEL ?? 'info', dest?: string): RootLogger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: ['password', '*.password', 'secret', '*.secret'], censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    dest ? pino.destination({ dest, sync: false, mkdir: true }) : pino.destination(2),
  );
}
