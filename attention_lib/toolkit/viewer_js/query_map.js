/* query_map (self-attention): point at a query patch or token, see its row of weights per head or averaged. */
KINDS.query_map = function (body, d, st, done) {
  var W = unpack(d.w), G = d.G, H = d.H, N = d.N, E = d.extra, pics = d._pics, vir = lut("viridis");
  var row = new Float32Array(N), side = 240, grid = d.grid;
  st.g = Math.min(st.g || 0, G - 1); st.h = st.h === undefined || st.h >= H ? (H > 1 ? -1 : 0) : st.h;
  st.q = st.q === undefined || st.q >= N ? (E ? E : 0) : st.q;
  el("div", "av-hint", body, d.text.hint);
  var items = galleryButtons(body, d, G, st, function () { draw(); }, pics);
  var heads = grid ? [] : headButtons(body, d, H, st, function () { draw(); });
  var main = el("div", "av-row", body);
  var patch = function (r, c) { return sub(d.text.patch, {r: r, c: c}); };
  var lab = function (i) {
    if (d.tokens) { return d.tokens[i]; }
    if (grid && i >= E) { return patch(((i - E) / grid[1]) | 0, (i - E) % grid[1]); }
    return E === 1 && i === 0 ? d.text.class_token : sub(d.text.token_i, {i: i});
  };
  var headName = function (h) { return h < 0 ? d.text.mean : sub(d.text.head, {i: h}); };
  var pointables = [], cv, extras = [], small = [], chips = [], strip, setBar, matrix, cap;
  if (grid) {
    var pic = el("div", "av-pic", main), ph = Math.round(side * (pics ? d.img.h / d.img.w : grid[0] / grid[1]));
    cv = canvas(pic, side, ph);
    pointables = cells(pic, grid[0], grid[1], E, patch);
    if (E) {
      var ex = el("div", "av-col", main);
      el("span", "av-small", ex, d.text.extra + ":");
      for (var i = 0; i < E; i++) {
        var b = el("button", "av-chip", ex); b.setAttribute("data-query", i); extras.push(b);
      }
    }
    /* one keyboard group: the extra tokens first, then the patches row by row */
    rove(pic.querySelector(".av-cells"), extras.concat(pointables), 0, sub(d.text.group, {what: d.text.query}));
    var ordered = extras.concat(pointables);
    ordered.forEach(function (it, j) {       /* on the grid, Up and Down move by a row */
      it.addEventListener("keydown", function (e) {
        if ((e.key !== "ArrowDown" && e.key !== "ArrowUp") || j < E) { return; }
        e.stopImmediatePropagation(); e.preventDefault();
        var k = j + (e.key === "ArrowDown" ? grid[1] : -grid[1]);
        if (k < E) { k = E ? 0 : j; }
        ordered[Math.min(ordered.length - 1, k)].focus();
      }, true);
    });
    if (H > 1) {
      var sm = el("div", "av-row", body);
      for (var h = -1; h < H; h++) {
        var card = el("button", "av-card", sm), c = decorative(canvas(card, 64, Math.round(64 * ph / side)));
        el("span", "av-small", card, headName(h));
        card.setAttribute("data-head", h); small.push(c); heads.push(card);
        card.addEventListener("click", function (e) { st.h = +e.currentTarget.getAttribute("data-head"); draw(); });
      }
      rove(sm, heads, 0, sub(d.text.group, {what: d.text.heads}));
    }
  } else {
    var seq = el("div", "av-row", main);
    for (var k = 0; k < N; k++) {
      var chip = el("button", "av-chip", seq, d.tokens ? d.tokens[k] : String(k));
      chip.setAttribute("data-query", k); chips.push(chip);
    }
    rove(seq, chips, 0, sub(d.text.group, {what: d.text.query_token}));
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
        var nm = el("span", "av-small", names, headName(hn));
        nm.style.lineHeight = "14px"; nm.style.height = "14px";
      }
      strip = canvas(sr, Math.min(320, Math.max(120, 12 * N)), 14 * (H + 1));
      strip.addEventListener("click", function (e) { st.h = Math.floor(e.offsetY / 14) - 1; draw(); });
    }
    pointables = chips;
  }
  setBar = colourbar(body, "viridis", d.text.weight);
  cap = caption(body);
  var gmax = [];
  var draw = function () {
    var base = st.g * H, q = st.q, r = rowOf(W, base, H, N, N, st.h, q, row), lo = 0, hi;
    mark(pointables.concat(extras), "data-query", q); mark(heads, "data-head", st.h); mark(items, "data-item", st.g);
    var what = d.text.query + ": " + lab(q) + " · " + headName(st.h);
    if (grid) {
      hi = maxOf(r, E, N); if (!(hi > 0)) { hi = 1; }
      paint(cv, pics && pics[st.g], raster(r, E, grid[0], grid[1], lo, hi, vir), 0.7, false);
      describe(cv, sub(d.text.alt_map, {what: what, top: top(r, E, N, 3, lab)}));
      for (var i = 0; i < E; i++) { extras[i].textContent = lab(i) + ": " + fmt(r[i]); }
      var tmp = new Float32Array(N);
      for (var h = -1; h < small.length - 1; h++) {
        var rr = rowOf(W, base, H, N, N, h, q, tmp), m = maxOf(rr, E, N) || 1;
        paint(small[h + 1], pics && pics[st.g], raster(rr, E, grid[0], grid[1], 0, m, vir), 0.7, false);
      }
    } else {
      if (gmax[st.g] === undefined) { gmax[st.g] = maxOf(W, base * N * N, (base + H) * N * N); }
      hi = gmax[st.g] > 0 ? gmax[st.g] : 1;
      for (var k = 0; k < N; k++) {
        var col = rgb(vir, r[k], lo, hi);
        chips[k].style.background = css(col); chips[k].style.color = ink(col); chips[k].title = fmt(r[k]);
      }
      var mvals = new Float32Array(N * N);
      for (var qq = 0; qq < N; qq++) { mvals.set(rowOf(W, base, H, N, N, st.h, qq, new Float32Array(N)), qq * N); }
      paint(matrix, null, raster(mvals, 0, N, N, lo, hi, vir), 1, false);
      var cell = matrix.height / N;
      outline(matrix, 0, q * cell, matrix.width, (q + 1) * cell, "#d62728", 2);
      describe(matrix, sub(d.text.alt_map, {what: what, top: top(r, 0, N, 3, lab)}));
      if (strip) {
        var svals = new Float32Array((H + 1) * N);
        for (var hh = -1; hh < H; hh++) { svals.set(rowOf(W, base, H, N, N, hh, q, new Float32Array(N)), (hh + 1) * N); }
        paint(strip, null, raster(svals, 0, H + 1, N, lo, hi, vir), 1, false);
        outline(strip, 0, (st.h + 1) * strip.height / (H + 1), strip.width, (st.h + 2) * strip.height / (H + 1), "#d62728", 2);
        describe(strip, sub(d.text.alt_heads, {what: d.text.query + ": " + lab(q)}));
      }
    }
    setBar(lo, hi);
    cap.textContent = what + " · " + sub(d.text.max, {v: fmt(maxOf(r, 0, N))});
    done({query: q, head: st.h, item: st.g});
  };
  body.addEventListener("mouseover", function (e) {
    var p = e.target.closest("[data-query]");
    if (p && +p.getAttribute("data-query") !== st.q) { st.q = +p.getAttribute("data-query"); draw(); }
  });
  var choose = function (e) {
    var p = e.target.closest("[data-query]");
    if (p && (e.type === "click" || +p.getAttribute("data-query") !== st.q)) { st.q = +p.getAttribute("data-query"); draw(); }
  };
  body.addEventListener("click", choose); body.addEventListener("focusin", choose);   /* touch, keyboard */
  draw();
};
