// express-client-credentials/postgres: client registrations (RFC 7591 names) that several instances
// of an app share through PostgreSQL.

export {
  PostgresClientStore,
  postgresClientTableSql,
  type PostgresClientStoreOptions,
  type PostgresQueryable,
} from './stores/postgres-client-store.js';
