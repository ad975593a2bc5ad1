// Copies the browser assets the package serves into api/static/vendor, minified where the
// npm package ships only a readable build, so the live page (/) and GraphiQL (/graphql) work
// with no network. Run it after changing a version in package.json:
//     cd web && npm ci && node vendor.mjs
// Its output is committed; installing sitrep never runs it.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { feature, mesh } from "topojson-client";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const out = join(here, "..", "api", "static", "vendor");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "licenses"), { recursive: true });

const copy = (from, to) => copyFileSync(join(modules, from), join(out, to));
const minify = (from, to) =>
  execFileSync(join(modules, ".bin", "esbuild"), [
    join(modules, from), "--minify", "--legal-comments=none", "--log-level=warning", `--outfile=${join(out, to)}`,
  ]);

// the live page's map: Leaflet (already minified) and its marker images
copy("leaflet/dist/leaflet.js", "leaflet.js");
copy("leaflet/dist/leaflet.css", "leaflet.css");
mkdirSync(join(out, "images"));
for (const name of ["marker-icon.png", "marker-icon-2x.png", "marker-shadow.png"]) {
  copy(`leaflet/dist/images/${name}`, `images/${name}`);
}

// the world outline: Natural Earth 1:110m land and country borders (world-atlas), as GeoJSON
// with coordinates rounded to 0.01° (about a kilometre, far below what 1:110m resolves).
// Antarctica is left out (no news there, and the projection stretches it across the map); a
// ring that crosses the antimeridian (Chukotka, Fiji) continues past 180° instead of jumping
// to -180°, which would draw a hairline across the world.
const countries = JSON.parse(readFileSync(join(modules, "world-atlas/countries-110m.json"), "utf8"));
const round = (value) => (Array.isArray(value) ? value.map(round) : Math.round(value * 100) / 100);
const unwrap = (ring) => {
  let offset = 0;
  return ring.map(([lon, lat], k) => {
    const step = k === 0 ? 0 : lon - ring[k - 1][0];
    if (step < -180) offset += 360; // crossed +180° going east
    if (step > 180) offset -= 360; // crossed it going west
    return [lon + offset, lat];
  });
};
const landFeatures = feature(countries, countries.objects.land);
const land = landFeatures.geometry ?? landFeatures.features[0].geometry; // one MultiPolygon
const polygons = land.coordinates
  .filter((polygon) => polygon[0].some(([, lat]) => lat > -60))
  .map((polygon) => polygon.map(unwrap));
const borders = mesh(countries, countries.objects.countries, (a, b) => a !== b);
const world = {
  type: "FeatureCollection",
  features: [
    { type: "Feature", properties: { layer: "land" }, geometry: { type: "MultiPolygon", coordinates: round(polygons) } },
    {
      type: "Feature",
      properties: { layer: "borders" },
      geometry: { type: "MultiLineString", coordinates: round(borders.coordinates.map(unwrap)) },
    },
  ],
};
writeFileSync(join(out, "world-110m.geojson"), JSON.stringify(world));

// GraphiQL: React's production builds, GraphiQL and the explorer plugin (UMD, read as globals)
copy("react/umd/react.production.min.js", "react.production.min.js");
copy("react-dom/umd/react-dom.production.min.js", "react-dom.production.min.js");
minify("graphiql/graphiql.min.js", "graphiql.min.js"); // the npm "min" build is not minified
minify("graphiql/graphiql.min.css", "graphiql.min.css");
copy("@graphiql/plugin-explorer/dist/index.umd.js", "plugin-explorer.umd.js");
copy("@graphiql/plugin-explorer/dist/style.css", "plugin-explorer.css");

const versions = {};
for (const name of ["leaflet", "world-atlas", "react", "react-dom", "graphiql", "@graphiql/plugin-explorer"]) {
  const pkg = JSON.parse(readFileSync(join(modules, name, "package.json"), "utf8"));
  versions[name] = pkg.version;
  const license = ["LICENSE", "LICENSE.md", "license"].map((f) => join(modules, name, f)).find((f) => {
    try { return statSync(f).isFile(); } catch { return false; }
  });
  const text = license ? readFileSync(license, "utf8") : `${pkg.name} ${pkg.version}: ${pkg.license}\n`;
  writeFileSync(join(out, "licenses", `${name.replace("@", "").replace("/", "-")}.txt`), text);
}
writeFileSync(join(out, "versions.json"), JSON.stringify(versions, null, 2) + "\n");

let total = 0;
const walk = (dir) => readdirSync(dir, { withFileTypes: true }).forEach((e) => {
  const path = join(dir, e.name);
  if (e.isDirectory()) walk(path); else total += statSync(path).size;
});
walk(out);
console.log(`api/static/vendor: ${(total / 1024).toFixed(0)} KiB`);
