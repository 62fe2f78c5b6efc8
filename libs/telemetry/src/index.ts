import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** The one logger of every app: JSON lines on stderr, so stdout stays free for data. */
export function createLogger(options: { name: string; level?: string } & LoggerOptions): Logger {
  return pino({ level: 'info', ...options }, pino.destination({ dest: 2, sync: false }));
}
