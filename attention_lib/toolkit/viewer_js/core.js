/* attention_lib map viewer, the engine's core: styles, colour maps, decoding, drawing and the keyboard.
   viewer.py joins core.js, one file per viewer kind and render.js into one script, defined once per window
   (window.__attentionViewer); every pointable element carries data-query="<index>".
   Keyboard: the pointable elements of a group (patches, tokens, slots, channels, images; heads; branches) are
   one Tab stop; the arrow keys move the query (Up and Down by rows on a grid), Home and End jump, Enter and
   Space select. Screen readers: each element has a name, the selected one is pressed, the caption is a live
   region, and each map's canvas is an image whose text alternative follows the selection. */
AV = window.__attentionViewer = {v: VERSION, state: {}};
var style = document.createElement("style");   /* the viewers' look, once per page */
style.textContent =
  '.attention-viewer{font:13px/1.35 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;background:#fff;border:1px solid #ccc;border-radius:6px;padding:8px 12px;margin:6px 0;max-width:780px;box-sizing:border-box}' +
  '.attention-viewer .av-title{font-weight:600;margin:0 0 4px}' +
  '.attention-viewer .av-row{display:flex;flex-wrap:wrap;gap:6px 10px;align-items:flex-start;margin:6px 0}' +
  '.attention-viewer .av-col{display:flex;flex-direction:column;gap:4px;align-items:flex-start}' +
  '.attention-viewer button{font:inherit;color:#222;background:#f4f4f4;border:1px solid #767676;border-radius:4px;padding:1px 6px;margin:0;cursor:pointer;line-height:1.3;min-height:24px}' +
  '.attention-viewer .av-on{outline:2px solid #d62728;outline-offset:1px}' +
  '.attention-viewer .av-chip{min-width:1.8em;text-align:center}' +
  '.attention-viewer .av-pic{position:relative;display:inline-block;line-height:0}' +
  '.attention-viewer .av-cells{position:absolute;left:0;top:0;width:100%;height:100%}' +
  '.attention-viewer .av-cells>div{position:absolute;box-sizing:border-box;cursor:pointer}' +
  '.attention-viewer .av-cells>div:hover{box-shadow:inset 0 0 0 1px #fff}' +
  '.attention-viewer .av-cells>div.av-on{outline:none;box-shadow:inset 0 0 0 2px #d62728}' +
  '.attention-viewer [data-rove]:focus{outline:none}' +
  '.attention-viewer [data-rove]:focus-visible{outline:3px solid #0b57d0;outline-offset:2px;position:relative;z-index:3}' +
  '.attention-viewer .av-cells>div:focus-visible,.attention-viewer .av-slots>div:focus-visible{outline:3px solid #0b57d0;outline-offset:1px;box-shadow:inset 0 0 0 2px #fff}' +
  '.attention-viewer canvas{display:block}' +
  '.attention-viewer .av-cap,.attention-viewer .av-hint{color:#505050;font-size:12px}' +
  '.attention-viewer .av-small{font-size:11px;color:#444}' +
  '.attention-viewer .av-cbar{display:flex;align-items:center;gap:6px;font-size:12px;color:#333}' +
  '.attention-viewer .av-card{display:flex;flex-direction:column;align-items:center;gap:2px;padding:2px;border:1px solid transparent;border-radius:4px;background:none}' +
  '.attention-viewer .av-sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}' +
  /* a static explorer around a viewer: */
  '.attention-explorer-static{font:13px/1.35 system-ui,sans-serif;border:1px solid #ccc;border-radius:6px;padding:8px 12px;background:#fff;color:#222;max-width:780px;margin:6px 0}' +
  '.attention-explorer-static .ae-controls{display:flex;flex-wrap:wrap;gap:4px 18px;margin:6px 0}' +
  '.attention-explorer-static .ae-controls label,.attention-explorer-static .ae-fixed{display:flex;align-items:center;gap:6px;min-height:24px}' +
  '.attention-explorer-static .ae-controls input[type=range]{height:24px;margin:0}' +
  '.attention-explorer-static .ae-controls output{min-width:3em;font-weight:600}' +
  '.attention-explorer-static .ae-controls input:focus-visible,.attention-explorer-static .ae-controls select:focus-visible,.attention-explorer-static summary:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}' +
  '.attention-explorer-static table{border-collapse:collapse;font-size:12px;margin-top:4px;color:#222;background:#fff}' +
  '.attention-explorer-static th,.attention-explorer-static td{border:1px solid #ddd;padding:1px 6px;text-align:left}' +
  '.attention-explorer-static .ae-note{color:#595959;font-size:12px}' +
  '.attention-explorer-static .attention-viewer{border:none;padding:0;margin:6px 0 0}';
(document.head || document.documentElement).appendChild(style);
var CMAPS = {
  viridis: ["440154", "472c7a", "3b518b", "2c718e", "21908d", "27ad81", "5cc863", "aadc32", "fde725"],
  rdbu: ["2166ac", "4393c3", "92c5de", "d1e5f0", "f7f7f7", "fddbc7", "f4a582", "d6604d", "b2182b"],
  inferno: ["000004", "1f0c48", "550f6d", "88226a", "ba3655", "e35933", "f98e09", "f9cb35", "fcffa4"]
};
var LUT = {};
var lut = function (name) {
  if (LUT[name]) { return LUT[name]; }
  var a = CMAPS[name], out = new Uint8Array(768);
  for (var i = 0; i < 256; i++) {
    var x = i / 255 * (a.length - 1), j = Math.min(a.length - 2, Math.floor(x)), f = x - j;
    for (var c = 0; c < 3; c++) {
      var u = parseInt(a[j].substr(2 * c, 2), 16), v = parseInt(a[j + 1].substr(2 * c, 2), 16);
      out[3 * i + c] = Math.round(u + (v - u) * f);
    }
  }
  return (LUT[name] = out);
};
var bytes = function (s) {
  var bin = atob(s), a = new Uint8Array(bin.length);
  for (var i = 0; i < bin.length; i++) { a[i] = bin.charCodeAt(i); }
  return a;
};
var floats = function (s) { var b = bytes(s); return new Float32Array(b.buffer, 0, b.length >> 2); };
var unpack = function (p) {      /* 8-bit rows, each with its own [lo, hi] */
  var q = bytes(p.q), lo = floats(p.lo), hi = floats(p.hi), n = p.n, out = new Float32Array(q.length);
  for (var i = 0; i < q.length; i++) { var r = (i / n) | 0; out[i] = lo[r] + q[i] * (hi[r] - lo[r]) / 255; }
  return out;
};
var fmt = function (v) { return Math.abs(v) >= 1e-3 || v === 0 ? (+v.toPrecision(3)).toString() : v.toExponential(1); };
var sub = function (s, o) { return s.replace(/\{(\w+)\}/g, function (m, k) { return k in o ? o[k] : m; }); };
var item = function (d, g) { return d.labels ? d.labels[g] : sub(d.text.image_i, {i: g}); };
var el = function (tag, cls, parent, text) {
  var e = document.createElement(tag);
  if (cls) { e.className = cls; }
  if (text !== undefined) { e.textContent = text; }
  if (parent) { parent.appendChild(e); }
  return e;
};
var canvas = function (parent, w, h) {
  var c = el("canvas", "", parent), r = window.devicePixelRatio || 1;
  c.width = Math.round(w * r); c.height = Math.round(h * r);
  c.style.width = w + "px"; c.style.height = h + "px";
  return c;
};
var rgb = function (cm, v, lo, hi) {
  var i = hi > lo ? Math.max(0, Math.min(255, Math.round((v - lo) / (hi - lo) * 255))) : 0;
  return [cm[3 * i], cm[3 * i + 1], cm[3 * i + 2]];
};
var css = function (c) { return "rgb(" + c[0] + "," + c[1] + "," + c[2] + ")"; };
/* black or white text, whichever contrasts more with the background c (WCAG): at least 4.58:1 on any colour */
var luminance = function (c) {
  var l = [0, 1, 2].map(function (k) { var v = c[k] / 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
};
var ink = function (c) { var L = luminance(c); return (L + 0.05) / 0.05 >= 1.05 / (L + 0.05) ? "#000" : "#fff"; };
/* an offscreen canvas of rows x cols coloured values */
var raster = function (vals, off, rows, cols, lo, hi, cm, alpha) {
  var c = document.createElement("canvas"), x = c.getContext("2d");
  c.width = cols; c.height = rows;
  var im = x.createImageData(cols, rows);
  for (var i = 0; i < rows * cols; i++) {
    var col = rgb(cm, vals[off + i], lo, hi);
    im.data[4 * i] = col[0]; im.data[4 * i + 1] = col[1]; im.data[4 * i + 2] = col[2];
    im.data[4 * i + 3] = Math.round(255 * (alpha === undefined ? 1 : alpha));
  }
  x.putImageData(im, 0, 0);
  return c;
};
var pictures = function (img, then) {   /* the pictures as <img> elements; then() once all have loaded */
  if (!img) { return then(null); }
  var out = [], left = img.src.length;
  var one = function () { if (--left === 0) { then(out); } };
  for (var g = 0; g < img.src.length; g++) {
    var im = new Image();
    im.onload = one; im.onerror = one; im.src = img.src[g];
    out.push(im);
  }
};
/* draw: picture (or none), then a coloured layer stretched over it */
var paint = function (cv, pic, layer, alpha, smooth, grey) {
  var x = cv.getContext("2d");
  x.setTransform(1, 0, 0, 1, 0, 0);
  x.fillStyle = "#fff"; x.fillRect(0, 0, cv.width, cv.height);
  if (pic) {
    x.imageSmoothingEnabled = true;
    if (grey) { x.filter = "grayscale(1)"; }
    x.drawImage(pic, 0, 0, cv.width, cv.height);
    x.filter = "none";
  }
  if (layer) {
    x.globalAlpha = pic ? alpha : 1;
    x.imageSmoothingEnabled = !!smooth;
    x.drawImage(layer, 0, 0, cv.width, cv.height);
    x.globalAlpha = 1;
  }
};
var outline = function (cv, x0, y0, x1, y1, colour, width) {
  var x = cv.getContext("2d"), r = window.devicePixelRatio || 1;
  x.strokeStyle = colour; x.lineWidth = (width || 2) * r;
  x.strokeRect(x0, y0, x1 - x0, y1 - y0);
};
/* a canvas that is decoration (a thumbnail inside a named button, a colour bar whose ends are text) */
var decorative = function (c) { c.setAttribute("aria-hidden", "true"); return c; };
/* a canvas that shows a map: an image whose text alternative the viewer keeps up to date */
var describe = function (c, text) { c.setAttribute("role", "img"); c.setAttribute("aria-label", text); return c; };
/* "name value, name value, ..." for the k largest of values[from..to), named by name(i) */
var top = function (values, from, to, k, name) {
  var idx = [];
  for (var i = from; i < to; i++) { idx.push(i); }
  idx.sort(function (a, b) { return values[b] - values[a]; });
  return idx.slice(0, k).map(function (i) { return name(i) + " " + fmt(values[i]); }).join(", ");
};
/* a horizontal colour bar with its two end values and a label */
var colourbar = function (parent, cm, label) {
  var box = el("div", "av-cbar", parent), lo = el("span", "", box), c = decorative(canvas(box, 150, 10)),
      hi = el("span", "", box);
  el("span", "", box, label);
  var x = c.getContext("2d"), g = raster(new Float32Array(256).map(function (v, i) { return i; }), 0, 1, 256, 0, 255, lut(cm));
  x.imageSmoothingEnabled = true; x.drawImage(g, 0, 0, c.width, c.height);
  return function (a, b) { lo.textContent = fmt(a); hi.textContent = fmt(b); };
};
/* the caption under a viewer: read out by screen readers when the selection changes */
var caption = function (body) {
  var c = el("div", "av-cap", body);
  c.setAttribute("aria-live", "polite");
  return c;
};
/* keyboard: a roving group. items: the group's elements in reading order; cols: row length on a grid
   (Up and Down move by a row), 0 for a line; label: the group's name. One item is in the Tab order (the
   selected one, see mark); moving focus selects, as pointing does (the viewers select on focusin). */
var rove = function (container, items, cols, label) {
  if (container) { container.setAttribute("role", "toolbar"); container.setAttribute("aria-label", label); }
  items.forEach(function (it, i) {
    it.setAttribute("data-rove", "");
    it.tabIndex = i === 0 ? 0 : -1;
    if (it.tagName !== "BUTTON") { it.setAttribute("role", "button"); }
    it.setAttribute("aria-pressed", "false");
    it.addEventListener("keydown", function (e) {
      var j = i, n = items.length;
      switch (e.key) {
        case "ArrowRight": j = i + 1; break;
        case "ArrowLeft": j = i - 1; break;
        case "ArrowDown": j = i + (cols || 1); break;
        case "ArrowUp": j = i - (cols || 1); break;
        case "Home": j = 0; break;
        case "End": j = n - 1; break;
        case "Enter": case " ": e.preventDefault(); it.click(); return;
        default: return;
      }
      e.preventDefault();
      j = Math.max(0, Math.min(n - 1, j));
      if (j !== i) { items[j].focus(); }
    });
  });
  return items;
};
/* the selected element of a group: its class, aria-pressed, and the group's one Tab stop */
var mark = function (nodes, attr, value) {
  var any = false;
  for (var i = 0; i < nodes.length; i++) {
    var on = nodes[i].getAttribute(attr) === String(value);
    nodes[i].classList.toggle("av-on", on);
    if (nodes[i].hasAttribute("data-rove")) {
      nodes[i].setAttribute("aria-pressed", on ? "true" : "false");
      nodes[i].tabIndex = on ? 0 : -1;
      any = any || on;
    }
  }
  if (!any && nodes.length && nodes[0].hasAttribute("data-rove")) { nodes[0].tabIndex = 0; }
};
var cells = function (pic, gh, gw, offset, name) {   /* pointable patches over a picture, a keyboard grid */
  var box = el("div", "av-cells", pic), out = [];
  for (var i = 0; i < gh * gw; i++) {
    var d = el("div", "", box), r = (i / gw) | 0, c = i % gw;
    d.style.left = (100 * c / gw) + "%"; d.style.top = (100 * r / gh) + "%";
    d.style.width = (100 / gw) + "%"; d.style.height = (100 / gh) + "%";
    d.setAttribute("data-query", offset + i);
    d.setAttribute("aria-label", name(r, c));
    out.push(d);
  }
  return out;
};
var headButtons = function (parent, d, H, st, redraw) {
  if (H < 2) { return []; }
  var row = el("div", "av-row", parent), out = [];
  el("span", "av-small", row, d.text.heads + ":");
  if (H > 8) {     /* many heads: a drop-down */
    var sel = el("select", "", row);
    sel.setAttribute("aria-label", d.text.heads);
    for (var j = -1; j < H; j++) { el("option", "", sel, j < 0 ? d.text.mean : sub(d.text.head, {i: j})).value = j; }
    sel.value = st.h;
    sel.addEventListener("change", function () { st.h = +sel.value; redraw(); });
    return [];
  }
  var group = el("div", "av-row", row);
  group.style.margin = "0";
  for (var h = -1; h < H; h++) {
    var b = el("button", "", group, h < 0 ? d.text.mean : sub(d.text.head, {i: h}));
    b.setAttribute("data-head", h);
    out.push(b);
  }
  rove(group, out, 0, sub(d.text.group, {what: d.text.heads}));
  group.addEventListener("click", function (e) {
    var b = e.target.closest("[data-head]");
    if (b) { st.h = +b.getAttribute("data-head"); redraw(); }
  });
  return out;
};
var galleryButtons = function (parent, d, G, st, redraw, pics) {
  if (G < 2) { return []; }
  var row = el("div", "av-row", parent), out = [];
  for (var g = 0; g < G; g++) {
    var b = el("button", "av-card", row);
    if (pics) { var c = decorative(canvas(b, 40, 40 * d.img.h / d.img.w)); paint(c, pics[g]); b.setAttribute("aria-label", item(d, g)); }
    else { b.textContent = item(d, g); }
    b.setAttribute("data-item", g); b.title = item(d, g);
    out.push(b);
  }
  rove(row, out, 0, sub(d.text.group, {what: d.text.image}));
  row.addEventListener("click", function (e) {
    var b = e.target.closest("[data-item]");
    if (b) { st.g = +b.getAttribute("data-item"); redraw(); }
  });
  row.addEventListener("focusin", function (e) {
    var b = e.target.closest("[data-item]");
    if (b && +b.getAttribute("data-item") !== st.g) { st.g = +b.getAttribute("data-item"); redraw(); }
  });
  return out;
};
/* a row of values (one head, or the mean of all heads) */
var rowOf = function (W, base, H, N, K, h, q, out) {
  if (h >= 0) { for (var k = 0; k < K; k++) { out[k] = W[((base + h) * N + q) * K + k]; } return out; }
  for (k = 0; k < K; k++) { out[k] = 0; }
  for (var j = 0; j < H; j++) { for (k = 0; k < K; k++) { out[k] += W[((base + j) * N + q) * K + k] / H; } }
  return out;
};
var maxOf = function (a, from, to) { var m = -Infinity; for (var i = from; i < to; i++) { if (a[i] > m) { m = a[i]; } } return m; };
var minOf = function (a, from, to) { var m = Infinity; for (var i = from; i < to; i++) { if (a[i] < m) { m = a[i]; } } return m; };
var KINDS = {};
