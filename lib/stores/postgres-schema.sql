-- The table of PostgresClientStore (express-client-credentials/postgres), with the default names:
-- one row per client, its record in RFC 7591 names as in a clients file. `express-client-credentials migrate`
-- or PostgresClientStore#migrate() runs these statements; postgresClientTableSql({ schema, table }) gives them for other names.
create table if not exists "public"."oauth_clients" (
  client_id  text primary key,
  -- The client record in RFC 7591 names, as in a clients file; validated when read.
  record     jsonb not null check (jsonb_typeof(record) = 'object' and record ->> 'client_id' = client_id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
