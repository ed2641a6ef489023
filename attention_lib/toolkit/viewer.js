/* attention_lib map viewer: draws the weights embedded in its page on canvases; no network, no kernel.
   Each viewer is <div class="attention-viewer"> holding <script class="av-data"> (JSON) and this script.
   The engine is defined once per window; every pointable element carries data-query="<index>". */
(function () {
  "use strict";
  var VERSION = 1, AV = window.__attentionViewer;
  if (!AV || AV.v < VERSION) {
    AV = window.__attentionViewer = {v: VERSION, state: {}};
    var style = document.createElement("style");   /* the viewers' look, once per page */
    style.textContent =
      '.attention-viewer{font:13px/1.35 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;background:#fff;border:1px solid #ccc;border-radius:6px;padding:8px 12px;margin:6px 0;max-width:780px;box-sizing:border-box}' +
      '.attention-viewer .av-title{font-weight:600;margin:0 0 4px}' +
      '.attention-viewer .av-row{display:flex;flex-wrap:wrap;gap:6px 10px;align-items:flex-start;margin:6px 0}' +
      '.attention-viewer .av-col{display:flex;flex-direction:column;gap:4px;align-items:flex-start}' +
      '.attention-viewer button{font:inherit;color:#222;background:#f4f4f4;border:1px solid #bbb;border-radius:4px;padding:1px 6px;margin:0;cursor:pointer;line-height:1.3}' +
      '.attention-viewer .av-on{outline:2px solid #d62728;outline-offset:1px}' +
      '.attention-viewer .av-chip{min-width:1.8em;text-align:center}' +
      '.attention-viewer .av-pic{position:relative;display:inline-block;line-height:0}' +
      '.attention-viewer .av-cells{position:absolute;left:0;top:0;width:100%;height:100%}' +
      '.attention-viewer .av-cells>div{position:absolute;box-sizing:border-box}' +
      '.attention-viewer .av-cells>div:hover{box-shadow:inset 0 0 0 1px #fff}' +
      '.attention-viewer .av-cells>div.av-on{outline:none;box-shadow:inset 0 0 0 2px #d62728}' +
      '.attention-viewer canvas{display:block}' +
      '.attention-viewer .av-cap,.attention-viewer .av-hint{color:#555;font-size:12px}' +
      '.attention-viewer .av-small{font-size:11px;color:#444}' +
      '.attention-viewer .av-cbar{display:flex;align-items:center;gap:6px;font-size:12px;color:#333}' +
      '.attention-viewer .av-card{display:flex;flex-direction:column;align-items:center;gap:2px;padding:2px;border:1px solid transparent;border-radius:4px;background:none}' +   /* a static explorer around a viewer: */
      '.attention-explorer-static{font:13px/1.35 system-ui,sans-serif;border:1px solid #ccc;border-radius:6px;padding:8px 12px;background:#fff;color:#222;max-width:780px;margin:6px 0}' +
      '.attention-explorer-static .ae-controls{display:flex;flex-wrap:wrap;gap:4px 18px;margin:6px 0}' +
      '.attention-explorer-static .ae-controls label{display:flex;align-items:center;gap:6px}' +
      '.attention-explorer-static .ae-controls output{min-width:3em;font-weight:600}' +
      '.attention-explorer-static table{border-collapse:collapse;font-size:12px;margin-top:4px}' +
      '.attention-explorer-static th,.attention-explorer-static td{border:1px solid #ddd;padding:1px 6px;text-align:left}' +
      '.attention-explorer-static .ae-note{color:#666;font-size:12px}' +
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
    var item = function (d, g) { return d.labels ? d.labels[g] : sub(d.text.image_i, {i: g}); };
    var sub = function (s, o) { return s.replace(/\{(\w+)\}/g, function (m, k) { return k in o ? o[k] : m; }); };
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
    var ink = function (c) { return c[0] * 0.299 + c[1] * 0.587 + c[2] * 0.114 > 140 ? "#000" : "#fff"; };
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
    /* a horizontal colour bar with its two end values and a label */
    var colourbar = function (parent, cm, label) {
      var box = el("div", "av-cbar", parent), lo = el("span", "", box), c = canvas(box, 150, 10),
          hi = el("span", "", box);
      el("span", "", box, label);
      var x = c.getContext("2d"), g = raster(new Float32Array(256).map(function (v, i) { return i; }), 0, 1, 256, 0, 255, lut(cm));
      x.imageSmoothingEnabled = true; x.drawImage(g, 0, 0, c.width, c.height);
      return function (a, b) { lo.textContent = fmt(a); hi.textContent = fmt(b); };
    };
    var mark = function (nodes, attr, value) {
      for (var i = 0; i < nodes.length; i++) {
        nodes[i].classList.toggle("av-on", nodes[i].getAttribute(attr) === String(value));
      }
    };
    var cells = function (pic, gh, gw, offset) {   /* pointable patches over a picture */
      var box = el("div", "av-cells", pic), out = [];
      for (var i = 0; i < gh * gw; i++) {
        var d = el("div", "", box), r = (i / gw) | 0, c = i % gw;
        d.style.left = (100 * c / gw) + "%"; d.style.top = (100 * r / gh) + "%";
        d.style.width = (100 / gw) + "%"; d.style.height = (100 / gh) + "%";
        d.setAttribute("data-query", offset + i);
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
        for (var j = -1; j < H; j++) { el("option", "", sel, j < 0 ? d.text.mean : sub(d.text.head, {i: j})).value = j; }
        sel.value = st.h;
        sel.addEventListener("change", function () { st.h = +sel.value; redraw(); });
        return [];
      }
      for (var h = -1; h < H; h++) {
        var b = el("button", "", row, h < 0 ? d.text.mean : sub(d.text.head, {i: h}));
        b.setAttribute("data-head", h);
        out.push(b);
      }
      row.addEventListener("click", function (e) {
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
        if (pics) { var c = canvas(b, 40, 40 * d.img.h / d.img.w); paint(c, pics[g]); }
        else { b.textContent = item(d, g); }
        b.setAttribute("data-item", g); b.title = item(d, g);
        out.push(b);
      }
      row.addEventListener("click", function (e) {
        var b = e.target.closest("[data-item]");
        if (b) { st.g = +b.getAttribute("data-item"); redraw(); }
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

    KINDS.query_map = function (body, d, st, done) {
      var W = unpack(d.w), G = d.G, H = d.H, N = d.N, E = d.extra, pics = d._pics, vir = lut("viridis");
      var row = new Float32Array(N), side = 240, grid = d.grid;
      st.g = Math.min(st.g || 0, G - 1); st.h = st.h === undefined || st.h >= H ? (H > 1 ? -1 : 0) : st.h;
      st.q = st.q === undefined || st.q >= N ? (E ? E : 0) : st.q;
      el("div", "av-hint", body, d.text.hint);
      var items = galleryButtons(body, d, G, st, function () { draw(); }, pics);
      var heads = grid ? [] : headButtons(body, d, H, st, function () { draw(); });
      var main = el("div", "av-row", body), lab = function (i) {
        return d.tokens ? d.tokens[i] : (grid && i >= E ? sub(d.text.patch, {r: ((i - E) / grid[1]) | 0, c: (i - E) % grid[1]}) : sub(d.text.token_i, {i: i}));
      };
      var pointables = [], cv, extras = [], small = [], chips = [], strip, setBar, matrix, cap;
      if (grid) {
        var pic = el("div", "av-pic", main), ph = Math.round(side * (pics ? d.img.h / d.img.w : grid[0] / grid[1]));
        cv = canvas(pic, side, ph);
        pointables = cells(pic, grid[0], grid[1], E);
        if (E) {
          var ex = el("div", "av-col", main);
          el("span", "av-small", ex, d.text.extra + ":");
          for (var i = 0; i < E; i++) { var b = el("button", "av-chip", ex); b.setAttribute("data-query", i); extras.push(b); }
        }
        if (H > 1) {
          var sm = el("div", "av-row", body);
          for (var h = -1; h < H; h++) {
            var card = el("button", "av-card", sm), c = canvas(card, 64, Math.round(64 * ph / side));
            el("span", "av-small", card, h < 0 ? d.text.mean : sub(d.text.head, {i: h}));
            card.setAttribute("data-head", h); small.push(c); heads.push(card);
            card.addEventListener("click", function (e) { st.h = +e.currentTarget.getAttribute("data-head"); draw(); });
          }
        }
      } else {
        var seq = el("div", "av-row", main);
        for (var k = 0; k < N; k++) { var chip = el("button", "av-chip", seq, d.tokens ? d.tokens[k] : String(k)); chip.setAttribute("data-query", k); chips.push(chip); }
        var mat = el("div", "av-row", body), mc = el("div", "av-col", mat), msz = Math.min(320, Math.max(160, 12 * N));
        el("span", "av-small", mc, d.text.query_token + " ↓   " + d.text.key_token + " →");
        matrix = canvas(mc, msz, msz);
        matrix.addEventListener("mousemove", function (e) {
          var q = Math.floor((e.offsetY / msz) * N);
          if (q >= 0 && q < N && q !== st.q) { st.q = q; draw(); }
        });
        if (H > 1) {
          var sc = el("div", "av-col", mat), sr = el("div", "av-row", sc), names = el("div", "av-col", sr);
          el("span", "av-small", sc, d.text.heads + " · " + d.text.key_token + " →").style.order = -1;
          sr.style.margin = "0"; names.style.gap = "0";
          for (var hn = -1; hn < H; hn++) {
            var nm = el("span", "av-small", names, hn < 0 ? d.text.mean : sub(d.text.head, {i: hn}));
            nm.style.lineHeight = "14px"; nm.style.height = "14px";
          }
          strip = canvas(sr, Math.min(320, Math.max(120, 12 * N)), 14 * (H + 1));
          strip.addEventListener("click", function (e) { st.h = Math.floor(e.offsetY / 14) - 1; draw(); });
        }
        pointables = chips;
      }
      setBar = colourbar(body, "viridis", d.text.weight);
      cap = el("div", "av-cap", body);
      var gmax = [];
      var draw = function () {
        var base = st.g * H, q = st.q, r = rowOf(W, base, H, N, N, st.h, q, row), lo = 0, hi;
        mark(pointables.concat(extras), "data-query", q); mark(heads, "data-head", st.h); mark(items, "data-item", st.g);
        if (grid) {
          hi = maxOf(r, E, N); if (!(hi > 0)) { hi = 1; }
          paint(cv, pics && pics[st.g], raster(r, E, grid[0], grid[1], lo, hi, vir), 0.7, false);
          for (var i = 0; i < E; i++) { extras[i].textContent = lab(i) + ": " + fmt(r[i]); }
          var tmp = new Float32Array(N);
          for (var h = -1; h < small.length - 1; h++) {
            var rr = rowOf(W, base, H, N, N, h, q, tmp), m = maxOf(rr, E, N) || 1;
            paint(small[h + 1], pics && pics[st.g], raster(rr, E, grid[0], grid[1], 0, m, vir), 0.7, false);
          }
        } else {
          if (gmax[st.g] === undefined) { gmax[st.g] = maxOf(W, base * N * N, (base + H) * N * N); }
          hi = gmax[st.g] > 0 ? gmax[st.g] : 1;
          for (var k = 0; k < N; k++) { var col = rgb(vir, r[k], lo, hi); chips[k].style.background = css(col); chips[k].style.color = ink(col); chips[k].title = fmt(r[k]); }
          var mvals = new Float32Array(N * N);
          for (var qq = 0; qq < N; qq++) { mvals.set(rowOf(W, base, H, N, N, st.h, qq, new Float32Array(N)), qq * N); }
          paint(matrix, null, raster(mvals, 0, N, N, lo, hi, vir), 1, false);
          var cell = matrix.height / N;
          outline(matrix, 0, q * cell, matrix.width, (q + 1) * cell, "#d62728", 2);
          if (strip) {
            var svals = new Float32Array((H + 1) * N);
            for (var hh = -1; hh < H; hh++) { svals.set(rowOf(W, base, H, N, N, hh, q, new Float32Array(N)), (hh + 1) * N); }
            paint(strip, null, raster(svals, 0, H + 1, N, lo, hi, vir), 1, false);
            outline(strip, 0, (st.h + 1) * strip.height / (H + 1), strip.width, (st.h + 2) * strip.height / (H + 1), "#d62728", 2);
          }
        }
        setBar(lo, hi);
        cap.textContent = d.text.query + ": " + lab(q) + " · " + (st.h < 0 ? d.text.mean : sub(d.text.head, {i: st.h})) + " · " + sub(d.text.max, {v: fmt(maxOf(r, 0, N))});
        done({query: q, head: st.h, item: st.g});
      };
      body.addEventListener("mouseover", function (e) { var p = e.target.closest("[data-query]"); if (p && +p.getAttribute("data-query") !== st.q) { st.q = +p.getAttribute("data-query"); draw(); } });
      var choose = function (e) { var p = e.target.closest("[data-query]"); if (p) { st.q = +p.getAttribute("data-query"); draw(); } };
      body.addEventListener("click", choose); body.addEventListener("focusin", choose);   /* touch, keyboard */
      draw();
    };

    KINDS.slot_map = function (body, d, st, done) {
      var W = unpack(d.w), G = d.G, H = d.H, N = d.N, S = d.S, pics = d._pics, vir = lut("viridis"), grid = d.grid;
      st.g = Math.min(st.g || 0, G - 1); st.h = st.h === undefined || st.h >= H ? (H > 1 ? -1 : 0) : st.h;
      st.t = st.t === undefined || st.t >= N ? 0 : st.t; st.s = st.s === undefined || st.s >= S ? 0 : st.s;
      el("div", "av-hint", body, d.text.hint);
      var items = galleryButtons(body, d, G, st, function () { draw(); }, pics);
      var heads = headButtons(body, d, H, st, function () { draw(); });
      var lab = function (i) { return d.tokens ? d.tokens[i] : (grid ? sub(d.text.patch, {r: (i / grid[1]) | 0, c: i % grid[1]}) : sub(d.text.token_i, {i: i})); };
      var capA = el("div", "av-small", body), partA = el("div", "av-row", body), pos = [], cv;
      if (grid) {
        var pic = el("div", "av-pic", partA), side = 240;
        cv = canvas(pic, side, Math.round(side * (pics ? d.img.h / d.img.w : grid[0] / grid[1])));
        pos = cells(pic, grid[0], grid[1], 0);
      } else {
        for (var i = 0; i < N; i++) { var c = el("button", "av-chip", partA, d.tokens ? d.tokens[i] : String(i)); c.setAttribute("data-query", i); pos.push(c); }
      }
      for (i = 0; i < pos.length; i++) { pos[i].setAttribute("data-axis", "position"); }
      var barA = colourbar(body, "viridis", d.text.weight);
      var capB = el("div", "av-small", body), partB = el("div", "av-row", body), slots = [];
      partB.style.gap = "1px";
      var cw = Math.max(4, Math.min(24, Math.floor(560 / S)));
      for (var s = 0; s < S; s++) {
        var b = el("div", "", partB); b.style.width = cw + "px"; b.style.height = "22px";
        b.setAttribute("data-query", s); b.setAttribute("data-axis", "slot"); b.title = sub(d.text.slot_i, {i: s}); slots.push(b);
      }
      var barB = colourbar(body, "viridis", d.text.weight);
      var cap = el("div", "av-cap", body), col = new Float32Array(N), row = new Float32Array(S);
      var value = function (h, n, s) {
        var base = st.g * H;
        if (h >= 0) { return W[((base + h) * N + n) * S + s]; }
        var v = 0; for (var j = 0; j < H; j++) { v += W[((base + j) * N + n) * S + s]; } return v / H;
      };
      var draw = function () {
        for (var n = 0; n < N; n++) { col[n] = value(st.h, n, st.s); }
        for (var s = 0; s < S; s++) { row[s] = value(st.h, st.t, s); }
        var ca = maxOf(col, 0, N) || 1, rb = maxOf(row, 0, S) || 1;
        mark(pos, "data-query", st.t); mark(slots, "data-query", st.s); mark(heads, "data-head", st.h); mark(items, "data-item", st.g);
        if (grid) { paint(cv, pics && pics[st.g], raster(col, 0, grid[0], grid[1], 0, ca, vir), 0.7, false); }
        else { for (n = 0; n < N; n++) { var cc = rgb(vir, col[n], 0, ca); pos[n].style.background = css(cc); pos[n].style.color = ink(cc); pos[n].title = fmt(col[n]); } }
        for (s = 0; s < S; s++) { slots[s].style.background = css(rgb(vir, row[s], 0, rb)); slots[s].title = sub(d.text.slot_i, {i: s}) + ": " + fmt(row[s]); }
        capA.textContent = sub(d.text.slot_column, {what: sub(d.text.slot_i, {i: st.s})});
        capB.textContent = sub(d.text.slot_weights, {what: lab(st.t)});
        barA(0, ca); barB(0, rb);
        cap.textContent = (H > 1 ? (st.h < 0 ? d.text.mean : sub(d.text.head, {i: st.h})) + " · " : "") + sub(d.text.slot_i, {i: st.s}) + " · " + lab(st.t);
        done({query: st.last === "slot" ? st.s : st.t, slot: st.s, position: st.t, head: st.h, item: st.g});
      };
      var point = function (e, always) {
        var p = e.target.closest("[data-query]");
        if (!p) { return; }
        var i = +p.getAttribute("data-query"), slot = p.getAttribute("data-axis") === "slot";
        if (!always && (slot ? st.s : st.t) === i) { return; }
        if (slot) { st.s = i; st.last = "slot"; } else { st.t = i; st.last = "position"; }
        draw();
      };
      body.addEventListener("mouseover", function (e) { point(e, false); });
      body.addEventListener("click", function (e) { point(e, true); });
      body.addEventListener("focusin", function (e) { point(e, false); });
      draw();
    };

    KINDS.spatial_gallery = function (body, d, st, done) {
      var M = unpack(d.m), G = d.G, h = d.h, w = d.w, pics = d._pics, inf = lut("inferno");
      var lo = minOf(M, 0, M.length), hi = maxOf(M, 0, M.length);
      st.g = st.g === undefined || st.g >= G ? 0 : st.g;
      el("div", "av-hint", body, d.text.hint);
      var thumbs = el("div", "av-row", body), cards = [], side = 240, ar = pics ? d.img.h / d.img.w : h / w;
      for (var g = 0; g < G; g++) {
        var b = el("button", "av-card", thumbs), c = canvas(b, 56, Math.round(56 * ar));
        paint(c, pics && pics[g], raster(M, g * h * w, h, w, lo, hi, inf), 0.55, true);
        el("span", "av-small", b, item(d, g));
        b.setAttribute("data-query", g); b.title = item(d, g); cards.push(b);
      }
      var main = el("div", "av-row", body), over = canvas(main, side, Math.round(side * ar));
      var alone = el("div", "av-col", main), mc = canvas(alone, Math.round(side / 2), Math.round(side / 2 * ar));
      el("span", "av-small", alone, d.text.map_only + " (" + h + " × " + w + ")");
      var bar = colourbar(body, "inferno", d.text.spatial_value), cap = el("div", "av-cap", body);
      var draw = function () {
        var layer = raster(M, st.g * h * w, h, w, lo, hi, inf);
        paint(over, pics && pics[st.g], layer, 0.55, true);
        if (d.boxes) {
          var bx = d.boxes[st.g], sx = over.width / d.img.W, sy = over.height / d.img.H;
          outline(over, bx[0] * sx, bx[1] * sy, bx[2] * sx, bx[3] * sy, "#00e5ff", 2);
        }
        paint(mc, null, layer, 1, false);
        mark(cards, "data-query", st.g); bar(lo, hi);
        cap.textContent = item(d, st.g) + " · " + sub(d.text.range, {lo: fmt(minOf(M, st.g * h * w, (st.g + 1) * h * w)), hi: fmt(maxOf(M, st.g * h * w, (st.g + 1) * h * w))});
        done({query: st.g});
      };
      var point = function (e) { var p = e.target.closest("[data-query]"); if (p && +p.getAttribute("data-query") !== st.g) { st.g = +p.getAttribute("data-query"); draw(); } };
      body.addEventListener("mouseover", point); body.addEventListener("click", point); body.addEventListener("focusin", point);
      draw();
    };

    KINDS.channel_gallery = function (body, d, st, done) {
      var Wt = unpack(d.w), G = d.G, K = d.K, C = d.C, pics = d._pics, vir = lut("viridis");
      var lo = Math.min(0, minOf(Wt, 0, Wt.length)), hi = Math.max(1, maxOf(Wt, 0, Wt.length));
      st.k = st.k === undefined || st.k >= K ? 0 : st.k;
      if (st.c === undefined || st.c >= C) {   /* start at the channel whose weight varies most across the images */
        var best = -1;
        for (var c0 = 0; c0 < C; c0++) {
          var a = Infinity, b = -Infinity;
          for (var g0 = 0; g0 < G; g0++) { var v0 = Wt[(g0 * K) * C + c0]; a = Math.min(a, v0); b = Math.max(b, v0); }
          if (b - a > best) { best = b - a; st.c = c0; }
        }
      }
      el("div", "av-hint", body, d.text.hint);
      var cardsRow = el("div", "av-row", body), bars = [], vals = [];
      for (var g = 0; g < G; g++) {
        var card = el("div", "av-card", cardsRow);
        if (pics) { var pc = canvas(card, 56, Math.round(56 * d.img.h / d.img.w)); paint(pc, pics[g]); }
        el("span", "av-small", card, item(d, g));
        var bc = canvas(card, 56, 14 * K); bars.push(bc);
        var vl = el("div", "av-small", card); vl.style.textAlign = "center"; vals.push(vl);
      }
      var branchBtns = [];
      if (K > 1) {
        var br = el("div", "av-row", body);
        el("span", "av-small", br, d.text.branch + ":");
        for (var k = 0; k < K; k++) { var bb = el("button", "", br, d.branches[k]); bb.setAttribute("data-branch", k); branchBtns.push(bb); }
        br.addEventListener("click", function (e) { var b = e.target.closest("[data-branch]"); if (b) { st.k = +b.getAttribute("data-branch"); draw(); } });
      }
      var heat = el("div", "av-col", body), cw = Math.max(2, Math.min(16, Math.floor(520 / C))), rh = Math.max(10, Math.min(24, Math.floor(160 / G)));
      el("span", "av-small", heat, d.text.image + " ↓   " + d.text.channel + " →");
      var hr = el("div", "av-row", heat), names = el("div", "av-col", hr);
      hr.style.margin = "0"; names.style.gap = "0";
      for (var gi = 0; gi < G; gi++) {
        var nm = el("span", "av-small", names, item(d, gi));
        nm.style.height = nm.style.lineHeight = rh + "px"; nm.style.overflow = "hidden";
      }
      var pic = el("div", "av-pic", hr), mat = canvas(pic, cw * C, rh * G), cols = [];
      var box = el("div", "av-cells", pic);
      for (var c = 0; c < C; c++) {
        var cd = el("div", "", box); cd.style.left = (100 * c / C) + "%"; cd.style.top = "0"; cd.style.width = (100 / C) + "%"; cd.style.height = "100%";
        cd.setAttribute("data-query", c); cd.title = sub(d.text.channel_i, {i: c}); cols.push(cd);
      }
      var bar = colourbar(body, "viridis", d.text.value), cap = el("div", "av-cap", body);
      var heatVals = new Float32Array(G * C);
      var draw = function () {
        for (var g = 0; g < G; g++) { for (var c = 0; c < C; c++) { heatVals[g * C + c] = Wt[(g * K + st.k) * C + c]; } }
        paint(mat, null, raster(heatVals, 0, G, C, lo, hi, vir), 1, false);
        outline(mat, st.c * mat.width / C, 0, (st.c + 1) * mat.width / C, mat.height, "#d62728", 2);
        var r = window.devicePixelRatio || 1;
        for (g = 0; g < G; g++) {
          var x = bars[g].getContext("2d"), bw = bars[g].width, bh = bars[g].height / K, txt = [];
          x.fillStyle = "#fff"; x.fillRect(0, 0, bw, bars[g].height);
          for (var k = 0; k < K; k++) {
            var v = Wt[(g * K + k) * C + st.c];
            x.fillStyle = "#eee"; x.fillRect(0, k * bh + r, bw, bh - 2 * r);
            x.fillStyle = css(rgb(vir, v, lo, hi)); x.fillRect(0, k * bh + r, bw * Math.max(0, Math.min(1, (v - lo) / (hi - lo))), bh - 2 * r);
            txt.push((K > 1 ? d.branches[k] + ": " : "") + fmt(v));
          }
          vals[g].innerHTML = "";
          for (k = 0; k < K; k++) { el("div", "", vals[g], txt[k]); }
        }
        mark(cols, "data-query", st.c); mark(branchBtns, "data-branch", st.k); bar(lo, hi);
        var cv = []; for (g = 0; g < G; g++) { cv.push(Wt[(g * K + st.k) * C + st.c]); }
        cap.textContent = sub(d.text.channel_i, {i: st.c}) + (K > 1 ? " · " + d.branches[st.k] : "") + " · " + sub(d.text.range, {lo: fmt(Math.min.apply(null, cv)), hi: fmt(Math.max.apply(null, cv))});
        done({query: st.c, branch: st.k});
      };
      var point = function (e, always) { var p = e.target.closest("[data-query]"); if (p && (always || +p.getAttribute("data-query") !== st.c)) { st.c = +p.getAttribute("data-query"); draw(); } };
      body.addEventListener("mouseover", function (e) { point(e, false); });
      body.addEventListener("click", function (e) { point(e, true); });
      body.addEventListener("focusin", function (e) { point(e, false); });
      draw();
    };

    KINDS.patch_tokens = function (body, d, st, done) {
      var V = unpack(d.w), N = d.N, D = d.D, grid = d.grid, pics = d._pics, rb = lut("rdbu");
      var m = Math.max(Math.abs(minOf(V, 0, V.length)), Math.abs(maxOf(V, 0, V.length))) || 1;
      st.q = st.q === undefined || st.q >= N ? 0 : st.q;
      el("div", "av-hint", body, d.text.hint);
      var main = el("div", "av-row", body), pic = el("div", "av-pic", main), side = 200;
      var cv = canvas(pic, side, Math.round(side * (pics ? d.img.h / d.img.w : grid[0] / grid[1])));
      paint(cv, pics && pics[0]);
      var cs = cells(pic, grid[0], grid[1], 0);
      for (var i = 0; i < cs.length; i++) { cs[i].style.boxShadow = "inset 0 0 0 1px rgba(255,255,255,.5)"; }
      var right = el("div", "av-col", main), zoom = canvas(right, 64, 64), cap = el("div", "av-cap", right);
      var vec = el("div", "av-col", body);
      el("span", "av-small", vec, d.text.dimension + " →");
      var strip = canvas(vec, Math.min(600, Math.max(160, 6 * D)), 22);
      var bar = colourbar(body, "rdbu", d.text.value);
      var draw = function () {
        var r = (st.q / grid[1]) | 0, c = st.q % grid[1];
        mark(cs, "data-query", st.q);
        for (var i = 0; i < cs.length; i++) { if (i !== st.q) { cs[i].style.boxShadow = "inset 0 0 0 1px rgba(255,255,255,.5)"; } else { cs[i].style.boxShadow = ""; } }
        var x = zoom.getContext("2d");
        x.fillStyle = "#fff"; x.fillRect(0, 0, zoom.width, zoom.height);
        if (pics) {
          var pw = pics[0].naturalWidth / grid[1], ph = pics[0].naturalHeight / grid[0];
          x.imageSmoothingEnabled = false; x.drawImage(pics[0], c * pw, r * ph, pw, ph, 0, 0, zoom.width, zoom.height);
        }
        paint(strip, null, raster(V, st.q * D, 1, D, -m, m, rb), 1, false);
        bar(-m, m);
        cap.textContent = sub(d.text.token_i, {i: st.q}) + " = " + sub(d.text.patch, {r: r, c: c}) + " → (" + D + ")";
        done({query: st.q});
      };
      var point = function (e) { var p = e.target.closest("[data-query]"); if (p && +p.getAttribute("data-query") !== st.q) { st.q = +p.getAttribute("data-query"); draw(); } };
      body.addEventListener("mouseover", point); body.addEventListener("click", point); body.addEventListener("focusin", point);
      draw();
    };

    KINDS.figure = function (body, d, st, done) {
      var im = el("img", "", body); im.src = d.src; im.alt = d.title || ""; im.style.maxWidth = "100%";
      done({});
    };
    KINDS.stack = function (body, d, st, done) {
      var left = d.parts.length, info = {};
      d.parts.forEach(function (p, i) {
        var part = el("div", "", body);
        el("div", "av-title", part, p.title);
        var key = "p" + i;
        st[key] = st[key] && st[key].kind === p.kind ? st[key] : {kind: p.kind};
        pictures(p.img, function (pics) {
          p._pics = pics;
          KINDS[p.kind](el("div", "", part), p, st[key], function (x) {
            for (var k in x) { info[k + (i ? i : "")] = x[k]; }
            if (--left <= 0) { done(info); }
          });
        });
      });
    };

    /* render(body, payload, key): draw a payload into a container; the selection survives re-rendering
       under the same key (a live explorer replacing its picture keeps the query the reader chose) */
    AV.render = function (body, d, key) {
      var root = body.closest(".attention-viewer") || body, st = key ? (AV.state[key] = AV.state[key] || {}) : {};
      if (st.kind !== d.kind) { for (var p in st) { delete st[p]; } st.kind = d.kind; }
      body.textContent = "";
      var title = root.querySelector(".av-title");
      if (title && d.title !== undefined) { title.textContent = d.title; }
      root.setAttribute("data-kind", d.kind);
      var inner = document.createElement("div");
      body.appendChild(inner);
      pictures(d.img, function (pics) {
        d._pics = pics;
        KINDS[d.kind](inner, d, st, function (info) {
          for (var k in info) { root.setAttribute("data-" + k, info[k]); }
          root.setAttribute("data-ready", "1");
        });
      });
    };
    AV.boot = function (script) {
      var root = script && script.closest ? script.closest(".attention-viewer") : null;
      var all = root ? [root] : document.querySelectorAll(".attention-viewer:not([data-ready])");
      for (var i = 0; i < all.length; i++) {
        var r = all[i], data = r.querySelector("script.av-data"), body = r.querySelector(".av-body");
        if (r.getAttribute("data-ready") || !data || !body) { continue; }
        try { AV.render(body, JSON.parse(data.textContent), r.getAttribute("data-state-key")); }
        catch (err) { body.textContent = "viewer error: " + err; if (window.console) { console.error(err); } }
      }
    };
    /* a static explorer: its controls choose a precomputed frame; the viewer draws the frame's data */
    AV.explorer = function (script) {
      var root = script.closest(".attention-explorer-static");
      if (!root || root.getAttribute("data-current")) { return; }
      var data = JSON.parse(root.querySelector("script.ae-data").textContent);
      var inputs = root.querySelectorAll("[data-control]"), counts = root.querySelector(".ae-counts"),
          trace = root.querySelector(".ae-trace"), view = root.querySelector(".attention-viewer"),
          body = view.querySelector(".av-body"), key = view.getAttribute("data-state-key");
      var refs = function (p) {
        if (p.parts) { p.parts.forEach(refs); }
        if (p.img && p.img.ref !== undefined) { p.img = data.images[p.img.ref]; }
        return p;
      };
      var show = function () {
        var k = [];
        for (var i = 0; i < inputs.length; i++) {
          var e = inputs[i], c = data.controls[+e.getAttribute("data-control")], v = +e.value;
          k.push(v);
          var out = root.querySelector('output[data-for="' + e.getAttribute("data-control") + '"]');
          if (out) { out.textContent = c.labels[v]; }
        }
        var f = data.frames[k.join(",")];
        if (!f) { return; }
        counts.innerHTML = data.counts[f.c];
        trace.innerHTML = data.tables[f.t];
        AV.render(body, refs(f.p), key);
        root.setAttribute("data-current", k.join(","));
      };
      for (var i = 0; i < inputs.length; i++) {
        inputs[i].addEventListener("input", show);
        inputs[i].addEventListener("change", show);
      }
      show();
    };
  }
  AV.boot(document.currentScript);
})();
