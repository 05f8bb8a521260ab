import type { Knex } from 'knex'

/**
 * Ends every browser session once. Before this version an API key could
 * sign a browser in, and the session it started had every scope (the
 * account's included) and outlived the key's revocation; sessions do not
 * record what started them, so those cannot be told apart from the others.
 * People sign in again with their token.
 */
export async function up (knex: Knex): Promise<void> {
  await knex('sessions').delete()
}

export async function down (): Promise<void> {}
