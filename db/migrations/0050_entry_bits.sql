-- Exact counts under any combination of link, blog, kind and time filters without visiting the
-- matching entries: per linked thing, a bitmap of its entries, combined with & | ~ and counted
-- with bit_count (db/bitcount.py).
--
-- An entry's position is (its UTC day, a slot within that day): slots are handed out per day from
-- a counter and never reused, so a time window is whole days of bitmaps plus the entries of its
-- partial end days, counted the plain way. Bitmaps are cut into parts of 1024 slots, one row per
-- (family, target, day, part):
--   'e' every entry (target 0)   'b' blog            'k' kind (1 post, 2 video, 3 interactive, 4 read_more)
--   'a' actor                    's' source          'L' location and everything inside it (via location_closure;
--                                                        target 0: any location, for a box around the world)
-- Only 'e' bits are authoritative: an entry that is deleted or moves to another day, blog or kind
-- gives its slot up (its 'e' bit is cleared; the rest may stay behind) and takes a new one, so
-- every count is ANDed with 'e'. Kept by statement-level triggers on entries, the link tables and
-- location_closure; a bulk load with triggers off calls sitrep_rebuild_entry_bits().

CREATE TABLE entry_days (
    day        date PRIMARY KEY,
    next_slot  int NOT NULL                 -- slots handed out so far that day
);

CREATE TABLE entry_slots (
    entry_id  bigint PRIMARY KEY,           -- no foreign key: the entries trigger removes it
    day       date NOT NULL,                -- (published_at AT TIME ZONE 'UTC')::date
    slot      int NOT NULL
);

CREATE TABLE entry_bits (
    family  "char" NOT NULL,
    target  bigint NOT NULL,
    day     date NOT NULL,
    part    int NOT NULL,                   -- slot / 1024
    bits    bit varying NOT NULL,           -- 1024 bits: bit (slot % 1024) is that entry
    PRIMARY KEY (family, target, day, part)
);

CREATE FUNCTION sitrep_bit(slot int) RETURNS bit varying LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT set_bit(0::bit(1024), slot % 1024, 1)::bit varying
$$;

CREATE FUNCTION sitrep_kind_no(kind text) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_position(ARRAY['post', 'video', 'interactive', 'read_more'], kind)::bigint
$$;

-- Set (or clear) the bits of (family, target, day, slot) rows, grouped by bitmap row and applied
-- in key order so that concurrent writers lock rows in one order.
-- The functions the triggers call are PL/pgSQL with generic plans: a SQL function is planned again
-- at every call, and a custom plan for `= ANY(ids)` costs more to make (3-4 ms) than to run.
CREATE FUNCTION sitrep_bits_set(fam "char"[], tgt bigint[], days date[], slots int[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    INSERT INTO entry_bits AS c (family, target, day, part, bits)
    SELECT f, t, d, s / 1024, bit_or(sitrep_bit(s)) FROM unnest(fam, tgt, days, slots) AS x(f, t, d, s)
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (family, target, day, part) DO UPDATE SET bits = c.bits | excluded.bits;
END $$;

CREATE FUNCTION sitrep_bits_clear(fam "char"[], tgt bigint[], days date[], slots int[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM 1 FROM entry_bits c
      JOIN (SELECT DISTINCT f, t, d, s / 1024 AS p FROM unnest(fam, tgt, days, slots) AS x(f, t, d, s)) k
        ON (c.family, c.target, c.day, c.part) = (k.f, k.t, k.d, k.p)
     ORDER BY c.family, c.target, c.day, c.part FOR UPDATE OF c;
    UPDATE entry_bits c SET bits = c.bits & ~m.mask
      FROM (SELECT f, t, d, s / 1024 AS p, bit_or(sitrep_bit(s)) AS mask
              FROM unnest(fam, tgt, days, slots) AS x(f, t, d, s) GROUP BY 1, 2, 3, 4) m
     WHERE (c.family, c.target, c.day, c.part) = (m.f, m.t, m.d, m.p);
END $$;

-- Every bit the current state of these entries (slotted already) implies: their own ('e', 'b', 'k')
-- and, with `links`, their links' (a new entry has none yet).
CREATE FUNCTION sitrep_entry_bit_rows(ids bigint[], links boolean)
RETURNS TABLE (family "char", target bigint, day date, slot int) LANGUAGE sql STABLE AS $$
    SELECT f.family, f.target, s.day, s.slot FROM entry_slots s JOIN entries e ON e.id = s.entry_id
     CROSS JOIN LATERAL (VALUES ('e'::"char", 0::bigint), ('b', e.blog_id), ('k', sitrep_kind_no(e.kind))) AS f(family, target)
     WHERE s.entry_id = ANY(ids)
    UNION ALL
    SELECT 'a', l.actor_id, s.day, s.slot FROM entry_slots s JOIN entry_actors l ON l.entry_id = s.entry_id
     WHERE links AND s.entry_id = ANY(ids)
    UNION ALL
    SELECT 's', l.source_id, s.day, s.slot FROM entry_slots s JOIN entry_sources l ON l.entry_id = s.entry_id
     WHERE links AND s.entry_id = ANY(ids)
    UNION ALL
    SELECT DISTINCT 'L'::"char", c.ancestor_id, s.day, s.slot
      FROM entry_slots s JOIN entry_locations l ON l.entry_id = s.entry_id
      JOIN location_closure c ON c.location_id = l.location_id WHERE links AND s.entry_id = ANY(ids)
    UNION ALL
    SELECT DISTINCT 'L'::"char", 0, s.day, s.slot
      FROM entry_slots s JOIN entry_locations l ON l.entry_id = s.entry_id WHERE links AND s.entry_id = ANY(ids)
$$;

-- Give these entries a slot on their day (they must have none) and set their bits.
CREATE FUNCTION sitrep_slot_entries(ids bigint[], links boolean) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    f "char"[]; t bigint[]; d date[]; s int[];
BEGIN
    WITH n AS (
        SELECT id, day, row_number() OVER (PARTITION BY day ORDER BY id)::int AS r
          FROM (SELECT id, (published_at AT TIME ZONE 'UTC')::date AS day FROM entries WHERE id = ANY(ids)) x
    ), per AS (
        SELECT day, count(*)::int AS c FROM n GROUP BY day
    ), alloc AS (
        INSERT INTO entry_days AS k (day, next_slot) SELECT day, c FROM per ORDER BY day
        ON CONFLICT (day) DO UPDATE SET next_slot = k.next_slot + excluded.next_slot
        RETURNING k.day, k.next_slot
    )
    INSERT INTO entry_slots (entry_id, day, slot)
    SELECT n.id, n.day, a.next_slot - p.c + n.r - 1 FROM n JOIN per p USING (day) JOIN alloc a USING (day);
    SELECT array_agg(r.family), array_agg(r.target), array_agg(r.day), array_agg(r.slot) INTO f, t, d, s
      FROM sitrep_entry_bit_rows(ids, links) r;
    IF f IS NOT NULL THEN
        PERFORM sitrep_bits_set(f, t, d, s);
    END IF;
END $$;

-- Take these entries' slots away (their 'e' bits with them).
CREATE FUNCTION sitrep_unslot_entries(ids bigint[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    d date[]; s int[];
BEGIN
    WITH gone AS (DELETE FROM entry_slots WHERE entry_id = ANY(ids) RETURNING day, slot)
    SELECT array_agg(day), array_agg(slot) INTO d, s FROM gone;
    IF d IS NOT NULL THEN
        PERFORM sitrep_bits_clear(array_fill('e'::"char", ARRAY[cardinality(d)]),
                                  array_fill(0::bigint, ARRAY[cardinality(d)]), d, s);
    END IF;
END $$;

CREATE FUNCTION sitrep_entries_bits() RETURNS trigger
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(id) INTO ids FROM new_entries;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(id) INTO ids FROM old_entries;
        PERFORM sitrep_unslot_entries(ids);
        RETURN NULL;
    ELSE
        -- a new day, blog or kind: a new slot (the old one keeps stale bits that 'e' masks)
        SELECT array_agg(n.id) INTO ids FROM new_entries n JOIN old_entries o ON o.id = n.id
         WHERE (n.published_at AT TIME ZONE 'UTC')::date <> (o.published_at AT TIME ZONE 'UTC')::date
            OR n.blog_id <> o.blog_id OR n.kind <> o.kind;
        IF ids IS NULL THEN
            RETURN NULL;
        END IF;
        PERFORM sitrep_unslot_entries(ids);
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM sitrep_slot_entries(ids, TG_OP = 'UPDATE');
    END IF;
    RETURN NULL;
END $$;

-- Every write to an entry first locks its days' entry_days rows (old and new day in order), before
-- 0001's trigger moves its links and the rollups lock their rows: a move or a delete otherwise
-- locks link_day_counts rows before the day's 'e' row, and an insert the other way round.
CREATE FUNCTION sitrep_entry_days_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO entry_days AS k (day, next_slot)
    SELECT d, 0 FROM unnest(ARRAY[(OLD.published_at AT TIME ZONE 'UTC')::date,
                                  (NEW.published_at AT TIME ZONE 'UTC')::date]) AS x(d)
     WHERE d IS NOT NULL GROUP BY d ORDER BY d
    ON CONFLICT (day) DO UPDATE SET next_slot = k.next_slot;
    RETURN COALESCE(NEW, OLD);
END $$;

CREATE TRIGGER entries_sync_bits_lock BEFORE INSERT OR DELETE OR UPDATE OF published_at, blog_id, kind ON entries
    FOR EACH ROW EXECUTE FUNCTION sitrep_entry_days_lock();

-- Named to fire after the rollups of 0012 and 0041 (a table's triggers fire in name order), so
-- that every writer locks rollup rows before bitmap rows.
CREATE TRIGGER entries_sync_bits_insert AFTER INSERT ON entries REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_entries_bits();
CREATE TRIGGER entries_sync_bits_delete AFTER DELETE ON entries REFERENCING OLD TABLE AS old_entries
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_entries_bits();
CREATE TRIGGER entries_sync_bits_update AFTER UPDATE ON entries REFERENCING OLD TABLE AS old_entries NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_entries_bits();

-- Link tables and location_closure. TG_ARGV[0]: the family; the rows' (entry, target) pairs come
-- from `pairs` below. A pair that goes is cleared only if the entry no longer has it by another
-- way (for 'L': another location inside the same ancestor).
CREATE FUNCTION sitrep_links_bits() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    pairs text;
    still text;
    added text;
    removed text;
    f "char"[]; t bigint[]; d date[]; s int[];
BEGIN
    IF TG_TABLE_NAME = 'entry_actors' THEN
        pairs := 'SELECT entry_id, actor_id AS target FROM %s';
        still := 'EXISTS (SELECT 1 FROM entry_actors x WHERE x.entry_id = p.entry_id AND x.actor_id = p.target)';
    ELSIF TG_TABLE_NAME = 'entry_sources' THEN
        pairs := 'SELECT entry_id, source_id AS target FROM %s';
        still := 'EXISTS (SELECT 1 FROM entry_sources x WHERE x.entry_id = p.entry_id AND x.source_id = p.target)';
    ELSIF TG_TABLE_NAME = 'entry_locations' THEN
        pairs := 'SELECT l.entry_id, c.ancestor_id AS target FROM %1$s l'
                 ' JOIN location_closure c ON c.location_id = l.location_id'
                 ' UNION SELECT entry_id, 0 FROM %1$s';
    ELSE  -- location_closure
        pairs := 'SELECT DISTINCT l.entry_id, c.ancestor_id AS target FROM %s c'
                 ' JOIN entry_locations l ON l.location_id = c.location_id';
    END IF;
    IF still IS NULL THEN
        still := 'EXISTS (SELECT 1 FROM entry_locations x JOIN location_closure y ON y.location_id = x.location_id'
                 ' WHERE x.entry_id = p.entry_id AND (y.ancestor_id = p.target OR p.target = 0))';
    END IF;
    IF TG_OP = 'INSERT' THEN
        added := format(pairs, 'new_rows');
    ELSIF TG_OP = 'DELETE' THEN
        removed := format(pairs, 'old_rows');
    ELSE
        added := format('(%s) EXCEPT (%s)', format(pairs, 'new_rows'), format(pairs, 'old_rows'));
        removed := format('(%s) EXCEPT (%s)', format(pairs, 'old_rows'), format(pairs, 'new_rows'));
    END IF;
    IF added IS NOT NULL THEN
        EXECUTE format('SELECT array_agg(%L::"char"), array_agg(p.target), array_agg(s.day), array_agg(s.slot)'
                       ' FROM (%s) p JOIN entry_slots s ON s.entry_id = p.entry_id', TG_ARGV[0], added)
           INTO f, t, d, s;
        IF f IS NOT NULL THEN
            PERFORM sitrep_bits_set(f, t, d, s);
        END IF;
    END IF;
    IF removed IS NOT NULL THEN
        EXECUTE format('SELECT array_agg(%L::"char"), array_agg(p.target), array_agg(s.day), array_agg(s.slot)'
                       ' FROM (%s) p JOIN entry_slots s ON s.entry_id = p.entry_id WHERE NOT %s',
                       TG_ARGV[0], removed, still)
           INTO f, t, d, s;
        IF f IS NOT NULL THEN
            PERFORM sitrep_bits_clear(f, t, d, s);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER entry_actors_sync_bits_insert AFTER INSERT ON entry_actors REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('a');
CREATE TRIGGER entry_actors_sync_bits_delete AFTER DELETE ON entry_actors REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('a');
CREATE TRIGGER entry_actors_sync_bits_update AFTER UPDATE ON entry_actors REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('a');
CREATE TRIGGER entry_sources_sync_bits_insert AFTER INSERT ON entry_sources REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('s');
CREATE TRIGGER entry_sources_sync_bits_delete AFTER DELETE ON entry_sources REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('s');
CREATE TRIGGER entry_sources_sync_bits_update AFTER UPDATE ON entry_sources REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('s');
CREATE TRIGGER entry_locations_sync_bits_insert AFTER INSERT ON entry_locations REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('L');
CREATE TRIGGER entry_locations_sync_bits_delete AFTER DELETE ON entry_locations REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('L');
CREATE TRIGGER entry_locations_sync_bits_update AFTER UPDATE ON entry_locations REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('L');
CREATE TRIGGER location_closure_sync_bits_insert AFTER INSERT ON location_closure REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('L');
CREATE TRIGGER location_closure_sync_bits_delete AFTER DELETE ON location_closure REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('L');
CREATE TRIGGER location_closure_sync_bits_update AFTER UPDATE ON location_closure REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitrep_links_bits('L');

-- Everything from scratch (after a load that bypassed the triggers, and for the existing data).
CREATE FUNCTION sitrep_rebuild_entry_bits() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE entry_bits, entry_slots, entry_days;
    INSERT INTO entry_slots (entry_id, day, slot)
    SELECT id, day, (row_number() OVER (PARTITION BY day ORDER BY id) - 1)::int
      FROM (SELECT id, (published_at AT TIME ZONE 'UTC')::date AS day FROM entries) x;
    INSERT INTO entry_days (day, next_slot) SELECT day, count(*) FROM entry_slots GROUP BY day;
    INSERT INTO entry_bits (family, target, day, part, bits)
    SELECT family, target, day, slot / 1024, bit_or(sitrep_bit(slot)) FROM (
        SELECT 'e'::"char" AS family, 0::bigint AS target, s.day, s.slot FROM entry_slots s
        UNION ALL
        SELECT 'b', e.blog_id, s.day, s.slot FROM entry_slots s JOIN entries e ON e.id = s.entry_id
        UNION ALL
        SELECT 'k', sitrep_kind_no(e.kind), s.day, s.slot FROM entry_slots s JOIN entries e ON e.id = s.entry_id
        UNION ALL
        SELECT 'a', l.actor_id, s.day, s.slot FROM entry_slots s JOIN entry_actors l ON l.entry_id = s.entry_id
        UNION ALL
        SELECT 's', l.source_id, s.day, s.slot FROM entry_slots s JOIN entry_sources l ON l.entry_id = s.entry_id
        UNION ALL
        SELECT 'L', c.ancestor_id, s.day, s.slot
          FROM entry_slots s JOIN entry_locations l ON l.entry_id = s.entry_id
          JOIN location_closure c ON c.location_id = l.location_id
        UNION ALL
        SELECT 'L', 0, s.day, s.slot FROM entry_slots s JOIN entry_locations l ON l.entry_id = s.entry_id
    ) r GROUP BY 1, 2, 3, 4
      ORDER BY 1, 2, 3, 4;  -- a target's days together on disk: a count reads a few pages, not one a day
END $$;

SELECT sitrep_rebuild_entry_bits();
ANALYZE entry_bits, entry_slots, entry_days;
