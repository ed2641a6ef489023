/* spatial_gallery (CBAM, BAM): an image's spatial map over it; channel_gallery (SE, ECA, SK): a channel's
   weight in every image of the gallery. */
KINDS.spatial_gallery = function (body, d, st, done) {
  var M = unpack(d.m), G = d.G, h = d.h, w = d.w, pics = d._pics, inf = lut("inferno");
  var lo = minOf(M, 0, M.length), hi = maxOf(M, 0, M.length);
  st.g = st.g === undefined || st.g >= G ? 0 : st.g;
  el("div", "av-hint", body, d.text.hint);
  var thumbs = el("div", "av-row", body), cards = [], side = 240, ar = pics ? d.img.h / d.img.w : h / w;
  for (var g = 0; g < G; g++) {
    var b = el("button", "av-card", thumbs), c = decorative(canvas(b, 56, Math.round(56 * ar)));
    paint(c, pics && pics[g], raster(M, g * h * w, h, w, lo, hi, inf), 0.55, true);
    el("span", "av-small", b, item(d, g));
    b.setAttribute("data-query", g); b.title = item(d, g); cards.push(b);
  }
  rove(thumbs, cards, 0, sub(d.text.group, {what: d.text.image}));
  var main = el("div", "av-row", body), over = canvas(main, side, Math.round(side * ar));
  var alone = el("div", "av-col", main), mc = canvas(alone, Math.round(side / 2), Math.round(side / 2 * ar));
  el("span", "av-small", alone, d.text.map_only + " (" + h + " × " + w + ")");
  var bar = colourbar(body, "inferno", d.text.spatial_value), cap = caption(body);
  /* where the map is largest, as the text alternative of both pictures: row and column of its top cells */
  var cellName = function (i) { return sub(d.text.cell, {r: ((i / w) | 0), c: i % w}); };
  var draw = function () {
    var layer = raster(M, st.g * h * w, h, w, lo, hi, inf), from = st.g * h * w;
    paint(over, pics && pics[st.g], layer, 0.55, true);
    if (d.boxes) {
      var bx = d.boxes[st.g], sx = over.width / d.img.W, sy = over.height / d.img.H;
      outline(over, bx[0] * sx, bx[1] * sy, bx[2] * sx, bx[3] * sy, "#00e5ff", 2);
    }
    paint(mc, null, layer, 1, false);
    mark(cards, "data-query", st.g); bar(lo, hi);
    var range = sub(d.text.range, {lo: fmt(minOf(M, from, from + h * w)), hi: fmt(maxOf(M, from, from + h * w))});
    var alt = sub(d.text.alt_map, {what: item(d, st.g) + " · " + d.text.spatial_value + " " + range,
                                   top: top(M, from, from + h * w, 3, function (i) { return cellName(i - from); })});
    describe(over, alt + (d.boxes ? " · " + d.text.box : "")); describe(mc, alt);
    cap.textContent = item(d, st.g) + " · " + range;
    done({query: st.g});
  };
  var point = function (e) {
    var p = e.target.closest("[data-query]");
    if (p && +p.getAttribute("data-query") !== st.g) { st.g = +p.getAttribute("data-query"); draw(); }
  };
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
  var channel = function (c) { return sub(d.text.channel_i, {i: c}); };
  el("div", "av-hint", body, d.text.hint);
  var cardsRow = el("div", "av-row", body), bars = [], vals = [];
  for (var g = 0; g < G; g++) {
    var card = el("div", "av-card", cardsRow);
    if (pics) { var pc = decorative(canvas(card, 56, Math.round(56 * d.img.h / d.img.w))); paint(pc, pics[g]); }
    el("span", "av-small", card, item(d, g));
    var bc = decorative(canvas(card, 56, 14 * K)); bars.push(bc);
    var vl = el("div", "av-small", card); vl.style.textAlign = "center"; vals.push(vl);
  }
  var branchBtns = [];
  if (K > 1) {
    var br = el("div", "av-row", body), brGroup = el("div", "av-row", br);
    brGroup.style.margin = "0";
    br.insertBefore(el("span", "av-small", null, d.text.branch + ":"), brGroup);
    for (var k = 0; k < K; k++) {
      var bb = el("button", "", brGroup, d.branches[k]); bb.setAttribute("data-branch", k); branchBtns.push(bb);
    }
    rove(brGroup, branchBtns, 0, sub(d.text.group, {what: d.text.branch}));
    var pickBranch = function (e) {
      var b = e.target.closest("[data-branch]");
      if (b && (e.type === "click" || +b.getAttribute("data-branch") !== st.k)) { st.k = +b.getAttribute("data-branch"); draw(); }
    };
    brGroup.addEventListener("click", pickBranch); brGroup.addEventListener("focusin", pickBranch);
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
    cd.setAttribute("data-query", c); cd.setAttribute("aria-label", channel(c)); cd.title = channel(c); cols.push(cd);
  }
  rove(box, cols, 0, sub(d.text.group, {what: d.text.channel}));
  var bar = colourbar(body, "viridis", d.text.value), cap = caption(body);
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
    var cv = [], each = [];
    for (g = 0; g < G; g++) { cv.push(Wt[(g * K + st.k) * C + st.c]); each.push(item(d, g) + " " + fmt(cv[g])); }
    var what = channel(st.c) + (K > 1 ? " · " + d.branches[st.k] : "");
    describe(mat, sub(d.text.alt_values, {what: what, values: each.join(", ")}));
    cap.textContent = what + " · " + sub(d.text.range, {lo: fmt(Math.min.apply(null, cv)), hi: fmt(Math.max.apply(null, cv))});
    done({query: st.c, branch: st.k});
  };
  var point = function (e, always) {
    var p = e.target.closest("[data-query]");
    if (p && (always || +p.getAttribute("data-query") !== st.c)) { st.c = +p.getAttribute("data-query"); draw(); }
  };
  body.addEventListener("mouseover", function (e) { point(e, false); });
  body.addEventListener("click", function (e) { point(e, true); });
  body.addEventListener("focusin", function (e) { point(e, false); });
  draw();
};
