/* slot_map (External Attention): a memory slot's column over the positions; a position's row over the slots. */
KINDS.slot_map = function (body, d, st, done) {
  var W = unpack(d.w), G = d.G, H = d.H, N = d.N, S = d.S, pics = d._pics, vir = lut("viridis"), grid = d.grid;
  st.g = Math.min(st.g || 0, G - 1); st.h = st.h === undefined || st.h >= H ? (H > 1 ? -1 : 0) : st.h;
  st.t = st.t === undefined || st.t >= N ? 0 : st.t; st.s = st.s === undefined || st.s >= S ? 0 : st.s;
  el("div", "av-hint", body, d.text.hint);
  var items = galleryButtons(body, d, G, st, function () { draw(); }, pics);
  var heads = headButtons(body, d, H, st, function () { draw(); });
  var patch = function (r, c) { return sub(d.text.patch, {r: r, c: c}); };
  var lab = function (i) { return d.tokens ? d.tokens[i] : (grid ? patch((i / grid[1]) | 0, i % grid[1]) : sub(d.text.token_i, {i: i})); };
  var slotName = function (s) { return sub(d.text.slot_i, {i: s}); };
  var headText = function () { return H > 1 ? (st.h < 0 ? d.text.mean : sub(d.text.head, {i: st.h})) + " · " : ""; };
  var capA = el("div", "av-small", body), partA = el("div", "av-row", body), pos = [], cv, posBox;
  if (grid) {
    var pic = el("div", "av-pic", partA), side = 240;
    cv = canvas(pic, side, Math.round(side * (pics ? d.img.h / d.img.w : grid[0] / grid[1])));
    pos = cells(pic, grid[0], grid[1], 0, patch);
    posBox = pic.querySelector(".av-cells");
  } else {
    for (var i = 0; i < N; i++) {
      var c = el("button", "av-chip", partA, d.tokens ? d.tokens[i] : String(i));
      c.setAttribute("data-query", i); pos.push(c);
    }
    posBox = partA;
  }
  for (i = 0; i < pos.length; i++) { pos[i].setAttribute("data-axis", "position"); }
  rove(posBox, pos, grid ? grid[1] : 0, sub(d.text.group, {what: d.text.token}));
  var barA = colourbar(body, "viridis", d.text.weight);
  var capB = el("div", "av-small", body), partB = el("div", "av-row av-slots", body), slots = [];
  partB.style.gap = "1px";
  var cw = Math.max(4, Math.min(24, Math.floor(560 / S)));
  for (var s = 0; s < S; s++) {
    var b = el("div", "", partB); b.style.width = cw + "px"; b.style.height = "22px";
    b.setAttribute("data-query", s); b.setAttribute("data-axis", "slot"); b.setAttribute("aria-label", slotName(s));
    b.title = slotName(s); slots.push(b);
  }
  rove(partB, slots, 0, sub(d.text.group, {what: d.text.slot}));
  var barB = colourbar(body, "viridis", d.text.weight);
  var cap = caption(body), col = new Float32Array(N), row = new Float32Array(S);
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
    capA.textContent = sub(d.text.slot_column, {what: slotName(st.s)});
    capB.textContent = sub(d.text.slot_weights, {what: lab(st.t)});
    if (grid) {
      paint(cv, pics && pics[st.g], raster(col, 0, grid[0], grid[1], 0, ca, vir), 0.7, false);
      describe(cv, sub(d.text.alt_map, {what: headText() + capA.textContent, top: top(col, 0, N, 3, lab)}));
    } else {
      for (n = 0; n < N; n++) {
        var cc = rgb(vir, col[n], 0, ca);
        pos[n].style.background = css(cc); pos[n].style.color = ink(cc); pos[n].title = fmt(col[n]);
      }
    }
    for (s = 0; s < S; s++) {
      slots[s].style.background = css(rgb(vir, row[s], 0, rb));
      slots[s].title = slotName(s) + ": " + fmt(row[s]);
    }
    barA(0, ca); barB(0, rb);
    cap.textContent = headText() + slotName(st.s) + " · " + lab(st.t) + " · " +
      sub(d.text.alt_map, {what: capB.textContent, top: top(row, 0, S, 3, slotName)});
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
