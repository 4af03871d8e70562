// express-client-credentials/postgres: client registrations (RFC 7591 names) and revoked tokens
// (RFC 7009) that several instances of an app share through PostgreSQL.

export {
  PostgresClientStore,
  postgresClientTableSql,
  type PostgresClientStoreOptions,
  type PostgresQueryable,
} from './stores/postgres-client-store.js';
export {
  PostgresRevocationStore,
  postgresRevocationTableSql,
  type PostgresRevocationStoreOptions,
} from './stores/postgres-revocation-store.js';
export { type PostgresListenConnection, type PostgresListenOptions, type PostgresPool } from './stores/postgres-listener.js';
