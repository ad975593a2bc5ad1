// The map of entries' locations: Leaflet (global L, vendored) over a Natural Earth outline,
// no tile server. One circle per location, sized by how many of the shown entries name it.

export class EntryMap {
  constructor(element, worldUrl) {
    this.map = L.map(element, { worldCopyJump: true, zoomSnap: 0.5, minZoom: 1, maxZoom: 9 }).setView([48, 34], 3);
    this.map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    this.map.attributionControl.addAttribution("Natural Earth");
    this.markers = L.featureGroup().addTo(this.map);
    fetch(worldUrl)
      .then((r) => r.json())
      .then((world) => {
        L.geoJSON(world, {
          interactive: false,
          style: (f) =>
            f.properties.layer === "land"
              ? { stroke: false, fillColor: "#ebe7df", fillOpacity: 1 }
              : { color: "#a39d90", weight: 0.8, fill: false },
        }).addTo(this.map).bringToBack();
      });
  }

  // `collection`: the GeoJSON of /v1/entries?format=geojson (one feature per entry and location)
  show(collection) {
    this.markers.clearLayers();
    const places = new Map();
    for (const f of collection.features) {
      const p = f.properties;
      const place = places.get(p.location) ?? { name: p.location_name, at: f.geometry.coordinates, headlines: [] };
      place.headlines.push(p.headline);
      places.set(p.location, place);
    }
    for (const [slug, place] of places) {
      const [lon, lat] = place.at;
      const n = place.headlines.length;
      const list = place.headlines.slice(0, 5).map((h) => `<li>${escapeHtml(h)}</li>`).join("");
      L.circleMarker([lat, lon], {
        radius: 4 + 2.5 * Math.sqrt(n),
        color: "#8a1c1c",
        weight: 1,
        fillColor: "#c0392b",
        fillOpacity: 0.55,
        className: "entry-marker",
      })
        .bindTooltip(`${place.name}: ${n} ${n === 1 ? "entry" : "entries"}`)
        .bindPopup(`<strong>${escapeHtml(place.name)}</strong><ul>${list}</ul>${n > 5 ? `<em>and ${n - 5} more</em>` : ""}`)
        .addTo(this.markers)
        .getElement()
        ?.setAttribute("data-location", slug);
    }
    if (places.size > 0) this.map.fitBounds(this.markers.getBounds(), { padding: [24, 24], maxZoom: 6 });
  }

  resize() {
    this.map.invalidateSize();
  }
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
