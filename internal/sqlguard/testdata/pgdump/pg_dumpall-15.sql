--
-- PostgreSQL database cluster dump
--

\restrict WRvL63VjgTEfafsCV3PDMrQJhfMWV7761ZL3yjXPzVfIJOvfJbpwGVPQOalmgSc

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE r1;
ALTER ROLE r1 WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:bBp6UQEs9YTjJrjhD56naw==$JZKmVE1Xlt9tOpms4ZdebYz7NlnZfQ0MT8wKkPdEzKY=:7TZ9yYuwJVWgXRdV6gdcnpCIElnAJijP1h/4RMuJclo=';

--
-- User Configurations
--

--
-- User Config "r1"
--

ALTER ROLE r1 SET search_path TO E'a\\b';








\unrestrict WRvL63VjgTEfafsCV3PDMrQJhfMWV7761ZL3yjXPzVfIJOvfJbpwGVPQOalmgSc

--
-- Databases
--

--
-- Database "template1" dump
--

\connect template1

--
-- PostgreSQL database dump
--

\restrict jQdwvwbyJ5f4XlqCoMuzCC5GgqKZsumcGikUc4Eaa7C715wpaF18T54QRF0u5Bm

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- PostgreSQL database dump complete
--

\unrestrict jQdwvwbyJ5f4XlqCoMuzCC5GgqKZsumcGikUc4Eaa7C715wpaF18T54QRF0u5Bm

--
-- Database "Upper" dump
--

--
-- PostgreSQL database dump
--

\restrict IPrC0XgT2pf0oZyLpsy8WAvdb5egIgCh9tBmYdgfPeBnrAXOfU8WDND9IZNYpoR

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'LATIN1';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: Upper; Type: DATABASE; Schema: -; Owner: postgres
--

CREATE DATABASE "Upper" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.UTF-8';


ALTER DATABASE "Upper" OWNER TO postgres;

\unrestrict IPrC0XgT2pf0oZyLpsy8WAvdb5egIgCh9tBmYdgfPeBnrAXOfU8WDND9IZNYpoR
\connect "Upper"
\restrict IPrC0XgT2pf0oZyLpsy8WAvdb5egIgCh9tBmYdgfPeBnrAXOfU8WDND9IZNYpoR

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'LATIN1';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: Upper; Type: DATABASE PROPERTIES; Schema: -; Owner: postgres
--

ALTER DATABASE "Upper" SET client_encoding TO 'LATIN1';


\unrestrict IPrC0XgT2pf0oZyLpsy8WAvdb5egIgCh9tBmYdgfPeBnrAXOfU8WDND9IZNYpoR
\connect "Upper"
\restrict IPrC0XgT2pf0oZyLpsy8WAvdb5egIgCh9tBmYdgfPeBnrAXOfU8WDND9IZNYpoR

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'LATIN1';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- PostgreSQL database dump complete
--

\unrestrict IPrC0XgT2pf0oZyLpsy8WAvdb5egIgCh9tBmYdgfPeBnrAXOfU8WDND9IZNYpoR

--
-- Database "app" dump
--

--
-- PostgreSQL database dump
--

\restrict dcrBhUCrQRYeN8slXGzmGAAf2b8rR3SchFVZYkqYV6F2gvWZnqFzvzOjY57yWCe

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: app; Type: DATABASE; Schema: -; Owner: postgres
--

CREATE DATABASE app WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.UTF-8';


ALTER DATABASE app OWNER TO postgres;

\unrestrict dcrBhUCrQRYeN8slXGzmGAAf2b8rR3SchFVZYkqYV6F2gvWZnqFzvzOjY57yWCe
\connect app
\restrict dcrBhUCrQRYeN8slXGzmGAAf2b8rR3SchFVZYkqYV6F2gvWZnqFzvzOjY57yWCe

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: dm; Type: DOMAIN; Schema: public; Owner: postgres
--

CREATE DOMAIN public.dm AS text
	CONSTRAINT dm_check CHECK ((VALUE <> '\'::text));


ALTER DOMAIN public.dm OWNER TO postgres;

--
-- Name: evtf(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.evtf() RETURNS event_trigger
    LANGUAGE plpgsql
    AS $$BEGIN END$$;


ALTER FUNCTION public.evtf() OWNER TO postgres;

--
-- Name: f_atomic(integer); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.f_atomic(x integer) RETURNS text
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT
         CASE
             WHEN (x > 0) THEN 'pos\'::text
             ELSE 'neg'::text
         END AS "case";
END;


ALTER FUNCTION public.f_atomic(x integer) OWNER TO postgres;

--
-- Name: f_cfg(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.f_cfg() RETURNS integer
    LANGUAGE sql
    SET work_mem TO '64kB'
    AS $$SELECT 1$$;


ALTER FUNCTION public.f_cfg() OWNER TO postgres;

--
-- Name: f_plpgsql(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.f_plpgsql() RETURNS void
    LANGUAGE plpgsql
    AS $$ BEGIN PERFORM set_config('app.x', 'y', false); RAISE NOTICE '\! not a command'; END $$;


ALTER FUNCTION public.f_plpgsql() OWNER TO postgres;

--
-- Name: f_setcfg(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.f_setcfg() RETURNS text
    LANGUAGE sql
    AS $$ SELECT set_config('app.y', 'z', true) $$;


ALTER FUNCTION public.f_setcfg() OWNER TO postgres;

--
-- Name: f_sql(text); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.f_sql(a text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $_$SELECT $1 || '\'$_$;


ALTER FUNCTION public.f_sql(a text) OWNER TO postgres;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: t; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.t (
    id integer NOT NULL,
    a text,
    b bytea,
    c bit(4),
    d double precision DEFAULT '1000000000000000000000000000000'::numeric,
    arr integer[] DEFAULT '{1,2,3}'::integer[],
    j jsonb,
    g text GENERATED ALWAYS AS ((a || '\'::text)) STORED,
    CONSTRAINT t_a_check CHECK ((a <> 'C:\'::text))
);


ALTER TABLE public.t OWNER TO postgres;

--
-- Name: TABLE t; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TABLE public.t IS 'C:\ Größe ''quoted'' naïve 日本語';


--
-- Name: COLUMN t.a; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON COLUMN public.t.a IS 'it''s \ here';


--
-- Name: p_atomic(); Type: PROCEDURE; Schema: public; Owner: postgres
--

CREATE PROCEDURE public.p_atomic()
    LANGUAGE sql
    BEGIN ATOMIC
 INSERT INTO public.t (id, a)
   VALUES (100, 'p'::text);
END;


ALTER PROCEDURE public.p_atomic() OWNER TO postgres;

--
-- Name: trgf(); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.trgf() RETURNS trigger
    LANGUAGE plpgsql
    AS $$BEGIN RETURN NEW; END$$;


ALTER FUNCTION public.trgf() OWNER TO postgres;

--
-- Name: mv; Type: MATERIALIZED VIEW; Schema: public; Owner: postgres
--

CREATE MATERIALIZED VIEW public.mv AS
 SELECT t.id,
    t.a
   FROM public.t
  WITH NO DATA;


ALTER TABLE public.mv OWNER TO postgres;

--
-- Name: pt; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.pt (
    k integer,
    v text
)
PARTITION BY RANGE (k);


ALTER TABLE public.pt OWNER TO postgres;

--
-- Name: pt1; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.pt1 (
    k integer,
    v text
);


ALTER TABLE public.pt1 OWNER TO postgres;

--
-- Name: s; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE public.s
    START WITH 5
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE public.s OWNER TO postgres;

--
-- Name: v; Type: VIEW; Schema: public; Owner: postgres
--

CREATE VIEW public.v AS
 SELECT replace(t.a, '\'::text, '/'::text) AS p,
    t.arr[1:2] AS s,
    set_config('app.user'::text, 'x'::text, false) AS sc,
    (t.a ~ '^\d+$'::text) AS digits,
    '0101'::"bit" AS bits,
    'data'::text AS u,
    ('a'::text || 'b'::text) AS dq,
        CASE
            WHEN (t.id > 1) THEN 'x'::text
            ELSE NULL::text
        END AS c
   FROM public.t;


ALTER TABLE public.v OWNER TO postgres;

--
-- Name: we;ird "T"; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public."we;ird ""T""" (
    "b""c" public.dm,
    "Upper" text
);


ALTER TABLE public."we;ird ""T""" OWNER TO postgres;

--
-- Name: 日本; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public."日本" (
    "列" text
);


ALTER TABLE public."日本" OWNER TO postgres;

--
-- Name: pt1; Type: TABLE ATTACH; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.pt ATTACH PARTITION public.pt1 FOR VALUES FROM (0) TO (10);


--
-- Name: 16528; Type: BLOB; Schema: -; Owner: postgres
--

SELECT pg_catalog.lo_create('16528');


ALTER LARGE OBJECT 16528 OWNER TO postgres;

--
-- Data for Name: pt1; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.pt1 (k, v) FROM stdin;
\.


--
-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.t (id, a, b, c, d, arr, j) FROM stdin;
1	D:\\	\\x00ff	1010	0.0015	{4,5}	{"k": "v\\\\u0041"}
2	tab\there\nnl	\N	\N	2	\N	\N
3	x'y \\! z	\N	\N	3	\N	\N
4	ünïcödé \\ 	\N	\N	4	\N	\N
\.


--
-- Data for Name: we;ird "T"; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public."we;ird ""T""" ("b""c", "Upper") FROM stdin;
ok	x
\.


--
-- Data for Name: 日本; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public."日本" ("列") FROM stdin;
値\\
\.


--
-- Name: s; Type: SEQUENCE SET; Schema: public; Owner: postgres
--

SELECT pg_catalog.setval('public.s', 5, true);


--
-- Data for Name: BLOBS; Type: BLOBS; Schema: -; Owner: -
--

BEGIN;

SELECT pg_catalog.lo_open('16528', 131072);
SELECT pg_catalog.lowrite(0, '\x5c27');
SELECT pg_catalog.lo_close(0);

COMMIT;

--
-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.t
    ADD CONSTRAINT t_pkey PRIMARY KEY (id);


--
-- Name: pt1 r; Type: RULE; Schema: public; Owner: postgres
--

CREATE RULE r AS
    ON INSERT TO public.pt1
   WHERE (new.v = '\'::text) DO INSTEAD NOTHING;


--
-- Name: t trg; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER trg BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.trgf();


--
-- Name: t pol; Type: POLICY; Schema: public; Owner: postgres
--

CREATE POLICY pol ON public.t USING ((a <> 'C:\'::text));


--
-- Name: t; Type: ROW SECURITY; Schema: public; Owner: postgres
--

ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;

--
-- Name: evt; Type: EVENT TRIGGER; Schema: -; Owner: postgres
--

CREATE EVENT TRIGGER evt ON ddl_command_end
   EXECUTE FUNCTION public.evtf();


ALTER EVENT TRIGGER evt OWNER TO postgres;

--
-- Name: mv; Type: MATERIALIZED VIEW DATA; Schema: public; Owner: postgres
--

REFRESH MATERIALIZED VIEW public.mv;


--
-- PostgreSQL database dump complete
--

\unrestrict dcrBhUCrQRYeN8slXGzmGAAf2b8rR3SchFVZYkqYV6F2gvWZnqFzvzOjY57yWCe

--
-- Database "postgres" dump
--

\connect postgres

--
-- PostgreSQL database dump
--

\restrict WTvZkB8vc0riGiFcNQdOB1MnGZz5KvwxGCBWhC8XMpHAflfXLyEWKW5moaRSemU

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: t1; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.t1 (
    a text
);


ALTER TABLE public.t1 OWNER TO postgres;

--
-- Data for Name: t1; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.t1 (a) FROM stdin;
'
'
'
\.


--
-- PostgreSQL database dump complete
--

\unrestrict WTvZkB8vc0riGiFcNQdOB1MnGZz5KvwxGCBWhC8XMpHAflfXLyEWKW5moaRSemU

--
-- Database "we'ird db" dump
--

--
-- PostgreSQL database dump
--

\restrict EjyYHfgYwQod3ulPDDDJp8P0Rh3g5P1TqQVa8qTjTAm7pXFZXFegiBqp6jvR1b0

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: we'ird db; Type: DATABASE; Schema: -; Owner: postgres
--

CREATE DATABASE "we'ird db" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.UTF-8';


ALTER DATABASE "we'ird db" OWNER TO postgres;

\unrestrict EjyYHfgYwQod3ulPDDDJp8P0Rh3g5P1TqQVa8qTjTAm7pXFZXFegiBqp6jvR1b0
\encoding SQL_ASCII
\connect -reuse-previous=on "dbname='we\'ird db'"
\restrict EjyYHfgYwQod3ulPDDDJp8P0Rh3g5P1TqQVa8qTjTAm7pXFZXFegiBqp6jvR1b0

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- PostgreSQL database dump complete
--

\unrestrict EjyYHfgYwQod3ulPDDDJp8P0Rh3g5P1TqQVa8qTjTAm7pXFZXFegiBqp6jvR1b0

--
-- Database "x'y" dump
--

--
-- PostgreSQL database dump
--

\restrict Cw1ShI7Gw9y4eKSGF8QFfznxVVKwMwbm1fIRghHqiUjTaVQyXMjhjaLYBuTXl5f

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: x'y; Type: DATABASE; Schema: -; Owner: postgres
--

CREATE DATABASE "x'y" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C.UTF-8';


ALTER DATABASE "x'y" OWNER TO postgres;

\unrestrict Cw1ShI7Gw9y4eKSGF8QFfznxVVKwMwbm1fIRghHqiUjTaVQyXMjhjaLYBuTXl5f
\encoding SQL_ASCII
\connect -reuse-previous=on "dbname='x\'y'"
\restrict Cw1ShI7Gw9y4eKSGF8QFfznxVVKwMwbm1fIRghHqiUjTaVQyXMjhjaLYBuTXl5f

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- PostgreSQL database dump complete
--

\unrestrict Cw1ShI7Gw9y4eKSGF8QFfznxVVKwMwbm1fIRghHqiUjTaVQyXMjhjaLYBuTXl5f

--
-- PostgreSQL database cluster dump complete
--

