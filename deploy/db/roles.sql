-- OAR's database roles, for an admin with psql (what `oar-database --create-roles` does, plus
-- the read-only grants of `oar-database --create`; lib/db/roles.ts is the code of both):
--
--   oar     LOGIN with a password and no cluster-wide power (not a superuser, cannot create
--           databases or roles). It owns the OAR database and its tables: that is all the
--           daemons and the command server need (oarproperty adds columns, which only a
--           table's owner may do). DB_BASE_LOGIN="oar" in oar.conf.
--   oar_ro  NOLOGIN; may read every table except challenges (each job's secret and ssh private
--           key). Grant it to the accounts of monitoring or accounting tools:
--           GRANT oar_ro TO some_login;
--
-- Run as a superuser:
--
--   psql -U postgres -v password='...' [-v dbname=oar] -f deploy/db/roles.sql
--
-- Without -v password, set the password afterwards with psql's \password oar, which sends only
-- its SCRAM verifier: the statement below carries the clear password, which a server with
-- log_statement = 'ddl' or 'all' writes to its log.
--
-- Then create the schema as oar (so that oar owns it): `oar-database --create` with
-- DB_BASE_LOGIN="oar" and DB_BASE_PASSWD in oar.conf. It also gives oar_ro its grants; or run
-- this file again once the tables exist. Safe to run any number of times.

\set ON_ERROR_STOP on
\if :{?dbname}
\else
  \set dbname oar
\endif

-- The owner. CREATE ROLE has no IF NOT EXISTS: \gexec runs the statement only when the query
-- returns it. The attributes are set again on an existing role: its password goes into a file.
SELECT 'CREATE ROLE oar LOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'oar') \gexec
ALTER ROLE oar WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
\if :{?password}
  -- :'password' is quoted as a literal by psql. Stored as a SCRAM-SHA-256 verifier when
  -- password_encryption is scram-sha-256 (the default since PostgreSQL 14).
  ALTER ROLE oar PASSWORD :'password';
\else
  \echo 'no -v password given: set one with \\password oar'
\endif

-- The reader: no login of its own, granted to other roles.
SELECT 'CREATE ROLE oar_ro NOLOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'oar_ro') \gexec

-- The database, owned by oar (which may not create databases itself). An existing database is
-- left as it is: ALTER DATABASE ... OWNER TO oar and REASSIGN OWNED move an old one.
SELECT format('CREATE DATABASE %I OWNER oar', :'dbname')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'dbname') \gexec
-- PUBLIC has CONNECT by default, but hardened servers revoke it.
SELECT format('GRANT CONNECT ON DATABASE %I TO oar_ro', :'dbname') \gexec

\connect :"dbname"
SELECT to_regclass('public.jobs') IS NOT NULL AS has_schema,
       (SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'jobs')
         AS tables_owner \gset
\if :has_schema
  GRANT USAGE ON SCHEMA public TO oar_ro;
  GRANT SELECT ON ALL TABLES IN SCHEMA public TO oar_ro;
  REVOKE ALL ON TABLE public.challenges FROM oar_ro;
  -- Tables the owner creates later are readable too (challenges exists already: not one).
  ALTER DEFAULT PRIVILEGES FOR ROLE :"tables_owner" IN SCHEMA public
    GRANT SELECT ON TABLES TO oar_ro;
  \echo 'oar_ro may read every table of' :"dbname" 'but challenges'
\else
  -- Not now: default privileges set before the schema would also cover challenges.
  \echo 'no OAR tables in' :"dbname" 'yet: oar-database --create (as oar) grants oar_ro its reads'
\endif
