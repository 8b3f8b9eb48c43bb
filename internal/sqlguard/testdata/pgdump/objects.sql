-- The objects behind the dumps in this directory, made by PostgreSQL
-- 15.18's pg_dumpall and pg_dump --create --inserts --dbname app after
-- psql -f objects.sql: literals with backslashes and quotes, BEGIN ATOMIC
-- bodies with CASE, set_config in views and functions, COPY data, names
-- that need quoting, and databases with their own settings.
DROP DATABASE IF EXISTS app; DROP DATABASE IF EXISTS "we'ird db"; DROP DATABASE IF EXISTS "Upper";
CREATE DATABASE app;
CREATE DATABASE "we'ird db";
CREATE DATABASE "Upper";
-- pg_dumpall-15-std-off.sql: with ALTER DATABASE app SET standard_conforming_strings TO off; here
ALTER DATABASE "Upper" SET client_encoding TO 'LATIN1';
DROP ROLE IF EXISTS r1; CREATE ROLE r1 LOGIN PASSWORD 'x';
ALTER ROLE r1 SET search_path = 'a\b';
\connect app
SET standard_conforming_strings = on;
SET client_encoding = 'UTF8';
CREATE TABLE t (id int PRIMARY KEY, a text, b bytea, c bit(4), d float8 DEFAULT 1e+30, arr int[] DEFAULT '{1,2,3}', j jsonb, g text GENERATED ALWAYS AS (a || '\') STORED, CHECK (a <> 'C:\'));
COMMENT ON TABLE t IS 'C:\ Größe ''quoted'' naïve 日本語';
COMMENT ON COLUMN t.a IS E'it\'s \\ here';
INSERT INTO t VALUES (1, 'D:\', '\x00ff', B'1010', 1.5e-3, '{4,5}', '{"k": "v\\u0041"}'), (2, E'tab\there\nnl', NULL, NULL, 2, NULL, NULL), (3, 'x''y \! z', NULL, NULL, 3, NULL, NULL), (4, 'ünïcödé \ ', NULL, NULL, 4, NULL, NULL);
CREATE VIEW v AS SELECT replace(a, '\', '/') AS p, arr[1:2] AS s, set_config('app.user', 'x', false) AS sc, a ~ '^\d+$' AS digits, B'0101' AS bits, U&'d\0061t\+000061' AS u, 'a' || $$b$$ AS dq, CASE WHEN id > 1 THEN 'x' END AS c FROM t;
CREATE FUNCTION f_atomic(x int) RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 'pos\' ELSE 'neg' END; END;
CREATE FUNCTION f_plpgsql() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('app.x', 'y', false); RAISE NOTICE '\! not a command'; END $$;
CREATE FUNCTION f_sql(a text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT $1 || ''\''';
CREATE PROCEDURE p_atomic() LANGUAGE sql BEGIN ATOMIC INSERT INTO t(id, a) VALUES (100, 'p'); END;
CREATE MATERIALIZED VIEW mv AS SELECT id, a FROM t;
CREATE DOMAIN dm AS text CHECK (VALUE <> '\');
CREATE TABLE "we;ird ""T""" ("b""c" dm, "Upper" text);
INSERT INTO "we;ird ""T""" VALUES ('ok', 'x');
CREATE TABLE pt (k int, v text) PARTITION BY RANGE (k);
CREATE TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (10);
CREATE SEQUENCE s START 5;
SELECT nextval('s');
ALTER TABLE t ENABLE ROW LEVEL SECURITY;
CREATE POLICY pol ON t USING (a <> 'C:\');
CREATE RULE r AS ON INSERT TO pt1 WHERE new.v = '\' DO INSTEAD NOTHING;
CREATE FUNCTION trgf() RETURNS trigger LANGUAGE plpgsql AS $f$BEGIN RETURN NEW; END$f$;
CREATE TRIGGER trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION trgf();
CREATE FUNCTION evtf() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
CREATE EVENT TRIGGER evt ON ddl_command_end EXECUTE FUNCTION evtf();
SELECT lo_from_bytea(0, '\x5c27');
CREATE TABLE "日本" ("列" text);
INSERT INTO "日本" VALUES ('値\');
CREATE FUNCTION f_setcfg() RETURNS text LANGUAGE sql AS $$ SELECT set_config('app.y', 'z', true) $$;
CREATE FUNCTION f_cfg() RETURNS int LANGUAGE sql SET work_mem = '64kB' AS 'SELECT 1';
