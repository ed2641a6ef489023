/* patch_tokens (patch embedding): point at a patch of the picture, see the token vector it becomes. */
KINDS.patch_tokens = function (body, d, st, done) {
  var V = unpack(d.w), N = d.N, D = d.D, grid = d.grid, pics = d._pics, rb = lut("rdbu");
  var m = Math.max(Math.abs(minOf(V, 0, V.length)), Math.abs(maxOf(V, 0, V.length))) || 1;
  st.q = st.q === undefined || st.q >= N ? 0 : st.q;
  var patch = function (r, c) { return sub(d.text.patch, {r: r, c: c}); };
  el("div", "av-hint", body, d.text.hint);
  var main = el("div", "av-row", body), pic = el("div", "av-pic", main), side = 200;
  var cv = canvas(pic, side, Math.round(side * (pics ? d.img.h / d.img.w : grid[0] / grid[1])));
  paint(cv, pics && pics[0]);
  describe(cv, sub(d.text.alt_patches, {gh: grid[0], gw: grid[1]}));
  var cs = cells(pic, grid[0], grid[1], 0, patch);
  rove(pic.querySelector(".av-cells"), cs, grid[1], sub(d.text.group, {what: d.text.patch_group}));
  for (var i = 0; i < cs.length; i++) { cs[i].style.boxShadow = "inset 0 0 0 1px rgba(255,255,255,.5)"; }
  var right = el("div", "av-col", main), zoom = canvas(right, 64, 64), cap = caption(right);
  var vec = el("div", "av-col", body);
  el("span", "av-small", vec, d.text.dimension + " →");
  var strip = canvas(vec, Math.min(600, Math.max(160, 6 * D)), 22);
  var bar = colourbar(body, "rdbu", d.text.value);
  var dim = function (j) { return d.text.dimension + " " + j; };
  var draw = function () {
    var r = (st.q / grid[1]) | 0, c = st.q % grid[1];
    mark(cs, "data-query", st.q);
    for (var i = 0; i < cs.length; i++) { cs[i].style.boxShadow = i !== st.q ? "inset 0 0 0 1px rgba(255,255,255,.5)" : ""; }
    var x = zoom.getContext("2d");
    x.fillStyle = "#fff"; x.fillRect(0, 0, zoom.width, zoom.height);
    if (pics) {
      var pw = pics[0].naturalWidth / grid[1], ph = pics[0].naturalHeight / grid[0];
      x.imageSmoothingEnabled = false; x.drawImage(pics[0], c * pw, r * ph, pw, ph, 0, 0, zoom.width, zoom.height);
    }
    describe(zoom, patch(r, c));
    paint(strip, null, raster(V, st.q * D, 1, D, -m, m, rb), 1, false);
    var from = st.q * D;
    describe(strip, sub(d.text.alt_vector, {D: D, lo: fmt(minOf(V, from, from + D)), hi: fmt(maxOf(V, from, from + D)),
                                            top: top(V, from, from + D, 3, function (j) { return dim(j - from); })}));
    bar(-m, m);
    cap.textContent = sub(d.text.token_i, {i: st.q}) + " = " + patch(r, c) + " → (" + D + ")";
    done({query: st.q});
  };
  var point = function (e) {
    var p = e.target.closest("[data-query]");
    if (p && +p.getAttribute("data-query") !== st.q) { st.q = +p.getAttribute("data-query"); draw(); }
  };
  body.addEventListener("mouseover", point); body.addEventListener("click", point); body.addEventListener("focusin", point);
  draw();
};

/* figure: a fixed picture (an explorer whose plot is a matplotlib figure); stack: several viewers as one */
KINDS.figure = function (body, d, st, done) {
  var im = el("img", "", body); im.src = d.src; im.alt = d.alt || d.title || ""; im.style.maxWidth = "100%";
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
