import type { Request } from 'express'

export interface Credentials {
  username: unknown
  token: unknown
}

/** Username and token from the form or JSON body; `Authorization: Bearer` supplies the token too. */
export function credentialsFrom (req: Request): Credentials {
  const body = (req.body ?? {}) as Record<string, unknown>
  const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
  return {
    username: body.username,
    token: bearer ?? body.token ?? body.secret
  }
}
