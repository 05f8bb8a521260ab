import { pino, type DestinationStream, type Logger } from 'pino'

/**
 * The one logger. Redaction is configuration: these paths are censored in
 * every line, whoever logs the object.
 */
export function createLogger (level: string, destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { service: 'heimdall' },
    redact: {
      paths: [
        'req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]',
        'token', 'secret', '*.token', '*.secret', 'secretKey', '*.secretKey', 'password', '*.password'
      ],
      censor: '[Redacted]'
    }
  }, destination)
}
