// PostGraphile v4 over a sitrep database: the comparison server for bench/graphql.py.
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/sitrep_bench PORT=5000 node server.js
//
// Configured as its documentation recommends for production (no GraphiQL, no query log,
// no schema watching), with the two plugins a PostGraphile user would add for this schema:
// many-to-many (entry ↔ actor/location/source through the link tables) and connection-filter.
"use strict";

const http = require("node:http");
const { postgraphile } = require("postgraphile");
const PgManyToManyPlugin = require("@graphile-contrib/pg-many-to-many");
const ConnectionFilterPlugin = require("postgraphile-plugin-connection-filter");

const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl) {
  console.error("DATABASE_URL is required");
  process.exit(2);
}
const port = Number(process.env.PORT || 5000);
const poolSize = Number(process.env.POOL_SIZE || 10); // sitrep's default pool_max

const middleware = postgraphile(
  { connectionString: databaseUrl, max: poolSize },
  "public",
  {
    appendPlugins: [PgManyToManyPlugin, ConnectionFilterPlugin],
    graphileBuildOptions: { connectionFilterRelations: true },
    dynamicJson: true,
    setofFunctionsContainNulls: false,
    ignoreRBAC: false,
    disableDefaultMutations: true,
    disableQueryLog: true,
    graphiql: false,
    watchPg: false,
    retryOnInitFail: false,
    extendedErrors: ["hint", "detail", "errcode"],
  },
);

http.createServer(middleware).listen(port, "127.0.0.1", () => {
  console.error(`postgraphile on http://127.0.0.1:${port}/graphql`);
});
