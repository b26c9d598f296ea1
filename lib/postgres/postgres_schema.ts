/**
 * The Postgres engine's tables and functions, in a schema of its own (the
 * `schema` option, `duplex` by default), created by the engine at start
 * (`create … if not exists`, in one transaction under an advisory lock, so
 * nodes starting together do not race). The same SQL is the migration an
 * operator may run instead.
 *
 * - `streams`: a topic's epoch, last offset and when it expires;
 *   `entries`: its numbered publishes; `keys`: idempotency keys;
 *   `latest`: a `latest` topic's values.
 * - `nodes`: heartbeats; `counts` and `members`: presence per node.
 * - `replies`: keyed requests' first replies; `payloads`: notifications
 *   over Postgres's 8,000-byte limit, sent by reference.
 * - `append(…)`: numbers, stores and notifies a publish in one statement,
 *   inside the caller's transaction if it has one (then delivered if and
 *   only if it commits); `publish(topic, event, data)`: the same from plain
 *   SQL, for apps on another driver.
 *
 * @module
 */

/** The channel every node listens on (one per schema). */
export function channelOf(schema: string): string {
  return `${schema}_events`;
}

/** The unit separator between a notification's fields. */
export const US = "\x1f";

/** The DDL and functions for `schema` (an identifier the options checked). */
export function schemaSql(schema: string): string {
  const s = `"${schema}"`;
  // `publish` calls `append`, which must exist first.
  return [tablesSql(s), notifySql(s, channelOf(schema)), appendSql(s)].join("");
}

/** The tables. */
function tablesSql(s: string): string {
  return `
create schema if not exists ${s};
create table if not exists ${s}.streams (
  topic text primary key, epoch text not null, top bigint not null default 0,
  ttl bigint not null, expires timestamptz not null);
create table if not exists ${s}.entries (
  topic text not null, "offset" bigint not null, head text not null,
  at timestamptz not null default clock_timestamp(), primary key (topic, "offset"));
create table if not exists ${s}.keys (
  id text primary key, at text not null, until timestamptz not null);
create table if not exists ${s}.latest (
  topic text not null, key text not null, "offset" bigint not null, head text not null,
  primary key (topic, key));
create table if not exists ${s}.nodes (node text primary key, beat timestamptz not null);
create table if not exists ${s}.counts (
  topic text not null, node text not null, count int not null, primary key (topic, node));
create index if not exists counts_node on ${s}.counts (node);
create table if not exists ${s}.members (
  topic text not null, node text not null, key text not null, entry text not null,
  primary key (topic, node, key));
create table if not exists ${s}.replies (
  id text primary key, reply text, until timestamptz not null);
create table if not exists ${s}.payloads (
  id bigserial primary key, body text not null, at timestamptz not null default now());

`;
}

/** `notify`: a notification, by reference past 7,900 bytes. */
function notifySql(s: string, channel: string): string {
  return `create or replace function ${s}.notify(p_body text) returns void
language plpgsql as $$
declare v_id bigint;
begin
  if octet_length(p_body) > 7900 then
    insert into ${s}.payloads (body) values (p_body) returning id into v_id;
    perform pg_notify('${channel}', 'r' || chr(31) || v_id);
  else
    perform pg_notify('${channel}', p_body);
  end if;
end $$;

`;
}

/** `append` (numbers, stores and notifies a publish in one call) and `publish` (the same for plain SQL). */
function appendSql(s: string): string {
  return `create or replace function ${s}.append(
  p_topic text, p_head text, p_size int, p_ttl bigint, p_key text,
  p_key_ttl bigint, p_epoch text, p_expected text, p_latest text,
  p_max_keys int, p_node text, p_own boolean)
returns table (outcome int, "offset" bigint, epoch text)
language plpgsql as $$
declare v_epoch text; v_top bigint; v_seen text;
begin
  if p_key is not null then
    select k.at into v_seen from ${s}.keys k
      where k.id = p_topic || chr(10) || p_key and k.until > now();
    if found then
      return query select 1, split_part(v_seen, ':', 1)::bigint, split_part(v_seen, ':', 2);
      return;
    end if;
  end if;
  insert into ${s}.streams as t (topic, epoch, ttl, expires)
    values (p_topic, p_epoch, p_ttl, now() + interval '1 day')
    on conflict (topic) do update set epoch = case when t.expires < now() then excluded.epoch else t.epoch end,
      top = case when t.expires < now() then 0 else t.top end;
  select t.epoch, t.top into v_epoch, v_top from ${s}.streams t
    where t.topic = p_topic for update;
  if v_top = 0 then
    delete from ${s}.entries e where e.topic = p_topic;
    delete from ${s}.latest l where l.topic = p_topic;
  end if;
  if p_expected is not null and p_expected <> (
    case when v_top > 0 then v_top || ':' || v_epoch else 'empty' end) then
    return query select 2, v_top, v_epoch;
    return;
  end if;
  if p_latest is not null
    and not exists (select 1 from ${s}.latest l where l.topic = p_topic and l.key = p_latest)
    and (select count(*) from ${s}.latest l where l.topic = p_topic) >= p_max_keys then
    return query select 3, v_top, v_epoch;
    return;
  end if;
  v_top := v_top + 1;
  update ${s}.streams set top = v_top, ttl = p_ttl, expires = now() + interval '1 day'
    where topic = p_topic;
  insert into ${s}.entries (topic, "offset", head) values (p_topic, v_top, p_head);
  delete from ${s}.entries e where e.topic = p_topic and e."offset" <= v_top - p_size;
  if p_latest is not null then
    insert into ${s}.latest as l (topic, key, "offset", head) values (p_topic, p_latest, v_top, p_head)
      on conflict (topic, key) do update set "offset" = excluded."offset", head = excluded.head;
  end if;
  if p_key is not null then
    insert into ${s}.keys (id, at, until)
      values (p_topic || chr(10) || p_key, v_top || ':' || v_epoch, now() + p_key_ttl * interval '1 millisecond')
      on conflict (id) do update set at = excluded.at, until = excluded.until;
  end if;
  perform ${s}.notify(concat_ws(chr(31), 'n', p_node, case when p_own then '1' else '0' end,
    p_topic, v_top, v_epoch, p_head));
  return query select 0, v_top, v_epoch;
end $$;


create or replace function ${s}.publish(
  p_topic text, p_event text, p_data jsonb, p_size int default 100,
  p_ttl bigint default 300000, p_key text default null)
returns table (outcome int, "offset" bigint, epoch text)
language sql as $$
  select * from ${s}.append(p_topic,
    left(json_build_object('event', p_event, 'topic', p_topic, 'data', p_data::json)::text, -2),
    p_size, p_ttl, p_key, 300000, substr(md5(random()::text), 1, 8), null, null, 0, 'sql', true)
$$;
`;
}

/** Deletes what has expired: old entries, streams, keys, replies, payloads, dead nodes' rows. */
export function janitorSql(schema: string, presenceTtl: number): string {
  const s = `"${schema}"`;
  return `
delete from ${s}.entries e using ${s}.streams t
  where e.topic = t.topic and e.at < now() - t.ttl * interval '1 millisecond';
delete from ${s}.entries e where not exists (select 1 from ${s}.streams t where t.topic = e.topic);
delete from ${s}.streams where expires < now();
delete from ${s}.latest l where not exists (select 1 from ${s}.streams t where t.topic = l.topic);
delete from ${s}.keys where until < now();
delete from ${s}.replies where until < now();
delete from ${s}.payloads where at < now() - interval '1 minute';
delete from ${s}.nodes where beat < now() - ${
    presenceTtl * 6
  } * interval '1 millisecond';
delete from ${s}.counts c where not exists (select 1 from ${s}.nodes n where n.node = c.node);
delete from ${s}.members m where not exists (select 1 from ${s}.nodes n where n.node = m.node);
`;
}
