/* sim momentum explorer: the closed forms of sim.linear.theory and the conversions of sim.linear.dynamics in
   float64 JavaScript, a simulator of the per-mode recursions, and the page's views. Everything the page computes is
   exposed on window.SimExplorer, so that tests can hold each function against its Python original.

   Conventions (as in the package): L(w) = ||y - Xw||^2 (no 1/2), so a mode sigma^2 has gradient 2 sigma^2 x; EMA
   momentum z <- (1 - beta) z + beta grad, w <- w - eta z (beta = 1 is GD); heavy ball (optax / PyTorch)
   v <- m v + grad, w <- w - lr v with lr = eta beta, m = 1 - beta; Distill's "Why Momentum Really Works" uses
   alpha = eta beta, beta_D = 1 - beta, lambda = 2 sigma^2. Runs start at w0 = 0 with every mode's coordinate of the
   optimum equal, so the relative error starts at 1 with x_i(0) = -1/sqrt(n). Deterministic: no clock, no random
   numbers, nothing fetched. */
(function () {
  "use strict";

  // ------------------------------------------------------------------------------------------------------------
  // Closed forms (each mirrors the sim.linear.theory function of the same name, operation for operation)

  const EPS = Number.EPSILON;
  const REGIMES = ["real distinct", "repeated", "complex", "unstable"];
  const DISTILL_REGIMES = [
    "monotonic decrease",
    "ripples",
    "one-step convergence",
    "monotonic oscillation",
    "divergence",
  ];
  const DIVERGENCE_BOUND = 1e10; // relative error at which a simulated run counts as diverged (as sim sweep)
  const MAX_MODES = 32;
  const MAX_STEPS = 100000;

  function arrayMax(a) {
    return Math.max.apply(null, a);
  }

  function arrayMin(a) {
    return Math.min.apply(null, a);
  }

  function gdFactor(eta, sigma2) {
    return 1 - 2 * eta * sigma2;
  }

  function gdRate(eta, spectrum) {
    return arrayMax(spectrum.map((s) => Math.abs(gdFactor(eta, s))));
  }

  function gdStableLr(spectrum) {
    return 1 / arrayMax(spectrum);
  }

  function gdOptimalLr(spectrum) {
    return 1 / (arrayMax(spectrum) + arrayMin(spectrum));
  }

  function gdOptimalRate(spectrum) {
    const k2 = arrayMax(spectrum) / arrayMin(spectrum);
    return (k2 - 1) / (k2 + 1);
  }

  function stepsToTolerance(rate, tol) {
    if (rate >= 1) return Infinity;
    if (rate > 0) return Math.ceil(Math.log(tol) / Math.log(rate));
    return rate === 0 ? 1 : NaN;
  }

  function momentumMatrix(eta, beta, sigma2) {
    return [
      [1 - beta, 2 * beta * sigma2],
      [-eta * (1 - beta), 1 - 2 * eta * beta * sigma2],
    ];
  }

  function momentumTrace(eta, beta, sigma2) {
    return 2 - beta - 2 * eta * beta * sigma2;
  }

  function momentumDeterminant(beta) {
    return 1 - beta;
  }

  function momentumDiscriminant(eta, beta, sigma2) {
    const tr = momentumTrace(eta, beta, sigma2);
    return tr * tr - 4 * momentumDeterminant(beta);
  }

  /* [[re, im] of lambda_plus, [re, im] of lambda_minus]: lambda_plus takes the principal root of D (a complex pair
     is ordered +im, -im); for real roots the larger-modulus root is (tr + sign(tr) sqrt D)/2 and the other det over
     it, which avoids the cancellation in tr - sqrt D. */
  function momentumEigenvalues(eta, beta, sigma2) {
    const tr = momentumTrace(eta, beta, sigma2);
    const det = momentumDeterminant(beta);
    const disc = tr * tr - 4 * det;
    const sq = Math.sqrt(Math.abs(disc));
    const real = disc >= 0;
    const sign = tr >= 0 ? 1 : -1;
    const big = (tr + sign * sq) / 2;
    const small = big === 0 ? 0 : det / big;
    const plusRe = real ? (tr >= 0 ? big : small) : tr / 2;
    const minusRe = real ? (tr >= 0 ? small : big) : tr / 2;
    const im = real ? 0 : sq / 2;
    return [
      [plusRe, im],
      [minusRe, -im],
    ];
  }

  /* Spectral radius of a real 2x2 matrix [[a, b], [c, d]] from its trace and determinant. */
  function spectralRadius(m) {
    const tr = m[0][0] + m[1][1];
    const det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    const disc = tr * tr - 4 * det;
    const sq = Math.sqrt(Math.abs(disc));
    if (disc >= 0) return Math.max(Math.abs(tr + sq), Math.abs(tr - sq)) / 2;
    return Math.sqrt(Math.abs(det));
  }

  /* Regime code (index into REGIMES): 3 unstable when rho >= 1; else 1 repeated when |D| <= rtol (tr^2 + 4|det|);
     else 2 complex when D < 0; else 0 real distinct. rtol defaults to 256 float64 epsilons, as in Python. */
  function momentumRegime(eta, beta, sigma2, rtol) {
    if (rtol === undefined || rtol === null) rtol = 256 * EPS;
    const tr = momentumTrace(eta, beta, sigma2);
    const det = momentumDeterminant(beta);
    const disc = tr * tr - 4 * det;
    const rho = spectralRadius(momentumMatrix(eta, beta, sigma2));
    let code = disc < 0 ? 2 : 0;
    if (Math.abs(disc) <= rtol * (tr * tr + 4 * Math.abs(det))) code = 1;
    if (rho >= 1) code = 3;
    return code;
  }

  function momentumRepeatedRootLrs(beta, sigma2) {
    const onePlus = 1 + Math.sqrt(1 - beta);
    const sq = onePlus * onePlus;
    return [beta / (2 * sigma2 * sq), sq / (2 * beta * sigma2)];
  }

  function momentumStableLr(beta, sigma2) {
    return (2 - beta) / (beta * sigma2);
  }

  function momentumThresholds(beta, sigma2) {
    const [lo, hi] = momentumRepeatedRootLrs(beta, sigma2);
    return [lo, hi, momentumStableLr(beta, sigma2)];
  }

  function momentumRate(eta, beta, spectrum) {
    return arrayMax(spectrum.map((s) => spectralRadius(momentumMatrix(eta, beta, s))));
  }

  /* [eta_lo, eta_hi, rate]: the eta interval with the best rate for this beta (eta_lo == eta_hi when one eta). */
  function momentumBestInterval(beta, spectrum) {
    const smax = arrayMax(spectrum);
    const smin = arrayMin(spectrum);
    const lo = momentumRepeatedRootLrs(beta, smin)[0];
    const hi = momentumRepeatedRootLrs(beta, smax)[1];
    const overlap = lo <= hi;
    const balance = (2 - beta) / (beta * (smin + smax));
    const t = ((2 - beta) * (smax - smin)) / (smax + smin);
    const det = momentumDeterminant(beta);
    const realRate = (t + Math.sqrt(Math.max(t * t - 4 * det, 0))) / 2;
    const rate = overlap ? Math.sqrt(det) : realRate;
    return [overlap ? lo : balance, overlap ? hi : balance, rate];
  }

  /* [eta, beta, rate] jointly optimal (Polyak's heavy-ball optimum in EMA form). */
  function momentumOptimum(spectrum) {
    const smax = Math.sqrt(arrayMax(spectrum));
    const smin = Math.sqrt(arrayMin(spectrum));
    const rho = (smax - smin) / (smax + smin);
    // 1 - rho^2 written without cancellation (it loses log10(kappa) digits on ill-conditioned spectra)
    const g = (2 * smin) / (smax + smin);
    return [1 / (2 * smax * smin), g * (2 - g), rho];
  }

  // Conversions (sim.linear.dynamics)

  function emaToHeavyBall(eta, beta) {
    return [eta * beta, 1 - beta];
  }

  function heavyBallToEma(lr, momentum) {
    return [lr / (1 - momentum), 1 - momentum];
  }

  function emaToDistill(eta, beta, sigma2) {
    return [eta * beta, 1 - beta, 2 * sigma2];
  }

  function distillToEma(alpha, betaD, lam) {
    return [alpha / (1 - betaD), 1 - betaD, lam / 2];
  }

  /* Distill's one-mode matrix on (z, x): z <- beta_D z + lambda x, x <- x - alpha z. */
  function distillMatrix(alpha, betaD, lam) {
    return [
      [betaD, lam],
      [-alpha * betaD, 1 - alpha * lam],
    ];
  }

  /* Distill's five regimes (index into DISTILL_REGIMES) at (alpha lambda, beta_D): divergence when rho >= 1;
     one-step convergence when R is nilpotent (beta_D = 0 and alpha lambda = 1, both eigenvalues 0); ripples when the
     eigenvalues are complex (the repeated-root band of momentumRegime counts as real: critical damping); else
     monotonic decrease when they are >= 0 (tr > 0), monotonic oscillation when <= 0 (tr < 0). */
  function distillRegime(alphaLambda, betaD, rtol) {
    if (rtol === undefined || rtol === null) rtol = 256 * EPS;
    const rho = spectralRadius(distillMatrix(alphaLambda, betaD, 1));
    const tr = 1 + betaD - alphaLambda;
    const disc = tr * tr - 4 * betaD;
    if (!(rho < 1)) return 4;
    if (betaD === 0 && Math.abs(tr) <= rtol * (1 + alphaLambda)) return 2;
    if (disc < 0 && Math.abs(disc) > rtol * (tr * tr + 4 * Math.abs(betaD))) return 1;
    return tr > 0 ? 0 : 3;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Simulation of the per-mode recursions (float64), as sim.linear.dynamics.momentum / gd run them

  /* Run `steps` steps of "momentum" (eta, beta) or "gd" (eta) from relative error 1 (x_i = -1/sqrt(n), velocity 0).
     Returns {modes: [Float64Array(steps + 1)] per-mode errors x_i(t), total2: squared relative error, diverged,
     divergeStep}; after divergence (error > DIVERGENCE_BOUND or non-finite) the arrays hold NaN. */
  function simulate(method, eta, beta, spectrum, steps) {
    const n = spectrum.length;
    const x = new Float64Array(n).fill(-1 / Math.sqrt(n));
    const z = new Float64Array(n);
    const modes = spectrum.map(() => new Float64Array(steps + 1).fill(NaN));
    const total2 = new Float64Array(steps + 1).fill(NaN);
    const decay = 1 - beta;
    const bound2 = DIVERGENCE_BOUND * DIVERGENCE_BOUND;
    const record = (t) => {
      let e2 = 0;
      for (let i = 0; i < n; i++) {
        modes[i][t] = x[i];
        e2 += x[i] * x[i];
      }
      total2[t] = e2;
      return e2;
    };
    record(0);
    let divergeStep = -1;
    for (let t = 1; t <= steps; t++) {
      for (let i = 0; i < n; i++) {
        const g = 2 * spectrum[i] * x[i];
        if (method === "gd") {
          x[i] = x[i] - eta * g;
        } else {
          z[i] = decay * z[i] + beta * g;
          x[i] = x[i] - eta * z[i];
        }
      }
      const e2 = record(t);
      if (!(e2 <= bound2)) {
        divergeStep = t;
        break;
      }
    }
    return { modes: modes, total2: total2, diverged: divergeStep >= 0, divergeStep: divergeStep };
  }

  /* First step t from which the relative error stays below tol through step `steps` (-1: not reached or diverged),
     the definition of sim sweep's settle_step. */
  function settleStep(run, tol, steps) {
    if (run.diverged) return -1;
    const tol2 = tol * tol;
    let last = 0;
    for (let t = 0; t <= steps; t++) if (run.total2[t] >= tol2) last = t;
    return last < steps ? last + 1 : -1;
  }

  /* Parse "5, 0.05" (commas and/or spaces) into a spectrum; throws Error with a one-line message. */
  function parseSpectrum(text) {
    const parts = String(text)
      .split(/[\s,]+/)
      .filter((p) => p.length > 0);
    if (parts.length === 0) throw new Error("the spectrum is empty: give squared singular values, e.g. 5, 0.05");
    if (parts.length > MAX_MODES) throw new Error("at most " + MAX_MODES + " modes, got " + parts.length);
    return parts.map((p) => {
      const v = Number(p);
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(p) || !Number.isFinite(v)) {
        throw new Error("not a finite number: " + JSON.stringify(p));
      }
      if (!(v > 0)) throw new Error("every squared singular value must be > 0, got " + p);
      return v;
    });
  }

  /* The map's axes (log-spaced) for a spectrum: beta from a decade below the optimum's beta to 1, eta from a
     hundredth of the smaller of GD's and momentum's optimal eta to past the largest mode's stability limit. */
  function mapExtents(spectrum) {
    const opt = momentumOptimum(spectrum);
    const betaLo = Math.pow(10, Math.floor(Math.log10(Math.min(0.2 * opt[1], 0.1))));
    const etaLo = Math.pow(10, Math.floor(Math.log10(0.01 * Math.min(gdOptimalLr(spectrum), opt[0]))));
    const etaHi = Math.pow(10, Math.ceil(Math.log10(2 * momentumStableLr(betaLo, arrayMax(spectrum)))));
    return { etaLo: etaLo, etaHi: etaHi, betaLo: betaLo, betaHi: 1 };
  }

  // ------------------------------------------------------------------------------------------------------------
  // Formatting

  function fmt(x, digits) {
    if (digits === undefined) digits = 6;
    if (Number.isNaN(x)) return "NaN";
    if (x === Infinity) return "\u221e";
    if (x === -Infinity) return "-\u221e";
    if (x === 0) return "0";
    const a = Math.abs(x);
    if (a >= 1e-4 && a < 1e7) return String(Number(x.toPrecision(digits)));
    const [m, e] = x.toExponential(digits - 1).split("e");
    return String(Number(m)) + "e" + Number(e);
  }

  function fmtComplex(re, im, digits) {
    if (im === 0) return fmt(re, digits);
    return fmt(re, digits) + (im > 0 ? " + " : " - ") + fmt(Math.abs(im), digits) + "i";
  }

  function decadeLabel(k) {
    return k >= -3 && k <= 3 ? String(Number(Math.pow(10, k).toPrecision(1))) : "1e" + k;
  }

  const VIRIDIS = [
    [68, 1, 84],
    [71, 45, 123],
    [59, 82, 139],
    [44, 114, 142],
    [33, 145, 140],
    [40, 174, 128],
    [94, 201, 98],
    [173, 220, 48],
    [253, 231, 37],
  ];

  function viridis(f) {
    const x = Math.min(Math.max(f, 0), 1) * (VIRIDIS.length - 1);
    const k = Math.min(Math.floor(x), VIRIDIS.length - 2);
    const u = x - k;
    const a = VIRIDIS[k];
    const b = VIRIDIS[k + 1];
    return [0, 1, 2].map((c) => Math.round(a[c] + u * (b[c] - a[c])));
  }

  const MODE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  const REGIME_COLORS = ["#6baed6", "#fd8d3c", "#74c476", "#222222"];
  const MIN_COLOR = "#ffffff"; // the smallest mode's curves on the map
  const MAX_COLOR = "#ff9f1c"; // the largest mode's curves
  const BEST_COLOR = "#ff4fd8"; // the best-rate interval
  const POINT_COLOR = "#ff2a2a";

  function modeColor(i) {
    return MODE_COLORS[i % MODE_COLORS.length];
  }

  // ------------------------------------------------------------------------------------------------------------
  // The page

  const $ = (id) => document.getElementById(id);
  const state = {
    spectrum: null,
    eta: NaN,
    beta: NaN,
    tol: 1e-3,
    steps: 1000,
    ext: null,
    colorHi: 0,
    mapCache: null,
    distillCache: null,
    dragging: false,
    last: null,
  };

  const MAP = { width: 560, height: 430, left: 60, right: 84, top: 12, bottom: 44 };
  const DISTILL = { width: 320, height: 250, left: 44, right: 10, top: 10, bottom: 36 };
  const EIG = { size: 240, pad: 24 };
  const ERR = { width: 610, height: 240, left: 52, right: 20, top: 10, bottom: 36 };

  function plotRect(g) {
    return { x: g.left, y: g.top, w: g.width - g.left - g.right, h: g.height - g.top - g.bottom };
  }

  function setupCanvas(canvas, g) {
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = g.width + "px";
    canvas.style.height = g.height + "px";
    canvas.width = Math.round(g.width * dpr);
    canvas.height = Math.round(g.height * dpr);
    return dpr;
  }

  /* CSS pixel (relative to the map canvas) of a point (eta, beta), and back. */
  function mapPixel(eta, beta) {
    const r = plotRect(MAP);
    const e = state.ext;
    const fx = (Math.log10(eta) - Math.log10(e.etaLo)) / (Math.log10(e.etaHi) - Math.log10(e.etaLo));
    const fy = (Math.log10(e.betaHi) - Math.log10(beta)) / (Math.log10(e.betaHi) - Math.log10(e.betaLo));
    return [r.x + fx * r.w, r.y + fy * r.h];
  }

  function mapPoint(px, py) {
    const r = plotRect(MAP);
    const e = state.ext;
    const fx = Math.min(Math.max((px - r.x) / r.w, 0), 1);
    const fy = Math.min(Math.max((py - r.y) / r.h, 0), 1);
    const le = Math.log10(e.etaLo) + fx * (Math.log10(e.etaHi) - Math.log10(e.etaLo));
    const lb = Math.log10(e.betaHi) - fy * (Math.log10(e.betaHi) - Math.log10(e.betaLo));
    return [Math.pow(10, le), Math.pow(10, lb)];
  }

  /* Colour of a rate: black for rho >= 1, else viridis over log10(1 - rho) from 4 decades below the optimum's
     (dark, slow) to the optimum's (yellow, fast). */
  function rateColor(rho) {
    if (!(rho < 1)) return [0, 0, 0];
    const u = Math.log10(1 - rho);
    return viridis((u - (state.colorHi - 4)) / 4);
  }

  function halo(ctx, text, x, y, color) {
    ctx.lineWidth = 3;
    ctx.strokeStyle = "rgba(0,0,0,0.85)";
    ctx.strokeText(text, x, y);
    ctx.fillStyle = color;
    ctx.fillText(text, x, y);
  }

  function drawLogAxes(ctx, g, ext) {
    const r = plotRect(g);
    ctx.strokeStyle = "#333";
    ctx.lineWidth = 1;
    ctx.strokeRect(r.x + 0.5, r.y + 0.5, r.w - 1, r.h - 1);
    ctx.fillStyle = "#222";
    ctx.font = "12px sans-serif";
    const le0 = Math.log10(ext.etaLo);
    const le1 = Math.log10(ext.etaHi);
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let k = Math.ceil(le0 - 1e-9); k <= le1 + 1e-9; k++) {
      const x = r.x + ((k - le0) / (le1 - le0)) * r.w;
      ctx.beginPath();
      ctx.moveTo(x, r.y + r.h);
      ctx.lineTo(x, r.y + r.h + 5);
      ctx.stroke();
      ctx.fillText(decadeLabel(k), x, r.y + r.h + 7);
    }
    ctx.fillText("learning rate \u03b7 (log scale)", r.x + r.w / 2, r.y + r.h + 26);
    const lb0 = Math.log10(ext.betaLo);
    const lb1 = Math.log10(ext.betaHi);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let k = Math.ceil(lb0 - 1e-9); k <= lb1 + 1e-9; k++) {
      const y = r.y + ((lb1 - k) / (lb1 - lb0)) * r.h;
      ctx.beginPath();
      ctx.moveTo(r.x - 5, y);
      ctx.lineTo(r.x, y);
      ctx.stroke();
      ctx.fillText(decadeLabel(k), r.x - 7, y);
    }
    ctx.save();
    ctx.translate(16, r.y + r.h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText("EMA weight \u03b2 of the new gradient (log; 1 = GD)", 0, 0);
    ctx.restore();
  }

  function drawColorbar(ctx) {
    const r = plotRect(MAP);
    const x = r.x + r.w + 12;
    const w = 14;
    const hBlack = 18;
    const h = r.h - hBlack - 6;
    for (let j = 0; j < h; j++) {
      const u = state.colorHi - (4 * j) / h;
      const c = viridis((u - (state.colorHi - 4)) / 4);
      ctx.fillStyle = "rgb(" + c.join(",") + ")";
      ctx.fillRect(x, r.y + j, w, 1);
    }
    ctx.fillStyle = "#000";
    ctx.fillRect(x, r.y + r.h - hBlack, w, hBlack);
    ctx.strokeStyle = "#333";
    ctx.strokeRect(x + 0.5, r.y + 0.5, w, h);
    ctx.font = "11px sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillStyle = "#222";
    const yOf = (u) => r.y + ((state.colorHi - u) / 4) * h;
    ctx.fillText("\u03c1 " + fmt(1 - Math.pow(10, state.colorHi), 3), x + w + 3, yOf(state.colorHi) + 5);
    for (let k = Math.floor(state.colorHi - 0.2); k >= state.colorHi - 4; k--) {
      if (yOf(k) < yOf(state.colorHi) + 18) continue;
      ctx.fillText(fmt(1 - Math.pow(10, k), 6), x + w + 3, yOf(k));
    }
    ctx.fillText("\u03c1 \u2265 1", x + w + 3, r.y + r.h - hBlack / 2);
  }

  /* Draw a curve eta = f(beta) over the map's beta range (one sample per CSS pixel row), clipped to the plot. */
  function traceCurve(ctx, f) {
    const r = plotRect(MAP);
    const e = state.ext;
    ctx.beginPath();
    let pen = false;
    for (let j = 0; j <= r.h; j++) {
      const beta = Math.pow(10, Math.log10(e.betaHi) - (j / r.h) * (Math.log10(e.betaHi) - Math.log10(e.betaLo)));
      const eta = f(beta);
      if (!(eta > 0) || !Number.isFinite(eta)) {
        pen = false;
        continue;
      }
      const p = mapPixel(eta, beta);
      if (pen) ctx.lineTo(p[0], p[1]);
      else ctx.moveTo(p[0], p[1]);
      pen = true;
    }
    ctx.stroke();
  }

  function drawStar(ctx, x, y, radius, fill) {
    ctx.beginPath();
    for (let k = 0; k < 10; k++) {
      const a = -Math.PI / 2 + (k * Math.PI) / 5;
      const rr = k % 2 === 0 ? radius : radius * 0.45;
      ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
    }
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 1;
    ctx.stroke();
  }

  /* Render the spectrum-dependent part of the map (heat map, curves, axes, colour bar) into an offscreen canvas. */
  function renderMapBase() {
    const canvas = $("map");
    const dpr = setupCanvas(canvas, MAP);
    const base = document.createElement("canvas");
    base.width = canvas.width;
    base.height = canvas.height;
    const ctx = base.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, base.width, base.height);
    const r = plotRect(MAP);
    const e = state.ext;
    const px0 = Math.round(r.x * dpr);
    const py0 = Math.round(r.y * dpr);
    const pw = Math.round((r.x + r.w) * dpr) - px0;
    const ph = Math.round((r.y + r.h) * dpr) - py0;
    const img = ctx.createImageData(pw, ph);
    const le0 = Math.log10(e.etaLo);
    const le1 = Math.log10(e.etaHi);
    const lb0 = Math.log10(e.betaLo);
    const lb1 = Math.log10(e.betaHi);
    const etas = new Float64Array(pw);
    for (let i = 0; i < pw; i++) etas[i] = Math.pow(10, le0 + ((i + 0.5) / pw) * (le1 - le0));
    for (let j = 0; j < ph; j++) {
      const beta = Math.pow(10, lb1 - ((j + 0.5) / ph) * (lb1 - lb0));
      for (let i = 0; i < pw; i++) {
        const c = rateColor(momentumRate(etas[i], beta, state.spectrum));
        const o = 4 * (j * pw + i);
        img.data[o] = c[0];
        img.data[o + 1] = c[1];
        img.data[o + 2] = c[2];
        img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, px0, py0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.save();
    ctx.beginPath();
    ctx.rect(r.x, r.y, r.w, r.h);
    ctx.clip();
    const smin = arrayMin(state.spectrum);
    const smax = arrayMax(state.spectrum);
    // best-rate interval per beta: a translucent band between eta_lo and eta_hi, and its edges
    ctx.fillStyle = "rgba(255, 79, 216, 0.28)";
    ctx.beginPath();
    const rows = [];
    for (let j = 0; j <= r.h; j++) {
      const beta = Math.pow(10, lb1 - (j / r.h) * (lb1 - lb0));
      const b = momentumBestInterval(beta, state.spectrum);
      rows.push([beta, b[0], b[1]]);
    }
    rows.forEach((row, k) => {
      const p = mapPixel(row[1], row[0]);
      if (k === 0) ctx.moveTo(p[0], p[1]);
      else ctx.lineTo(p[0], p[1]);
    });
    for (let k = rows.length - 1; k >= 0; k--) {
      const p = mapPixel(rows[k][2], rows[k][0]);
      ctx.lineTo(p[0], p[1]);
    }
    ctx.closePath();
    ctx.fill();
    ctx.strokeStyle = BEST_COLOR;
    ctx.lineWidth = 3.5;
    ctx.setLineDash([]);
    traceCurve(ctx, (beta) => momentumBestInterval(beta, state.spectrum)[0]);
    traceCurve(ctx, (beta) => momentumBestInterval(beta, state.spectrum)[1]);
    // the extreme modes' regime boundaries: repeated roots (solid) and stability limit (dashed)
    const extremes = smin === smax ? [[smax, MAX_COLOR]] : [[smin, MIN_COLOR], [smax, MAX_COLOR]];
    for (const [s, color] of extremes) {
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.4;
      ctx.setLineDash([]);
      traceCurve(ctx, (beta) => momentumRepeatedRootLrs(beta, s)[0]);
      traceCurve(ctx, (beta) => momentumRepeatedRootLrs(beta, s)[1]);
      ctx.setLineDash([5, 4]);
      traceCurve(ctx, (beta) => momentumStableLr(beta, s));
    }
    ctx.setLineDash([]);
    const opt = momentumOptimum(state.spectrum);
    const po = mapPixel(opt[0], opt[1]);
    drawStar(ctx, po[0], po[1], 9, "gold");
    ctx.restore();
    drawLogAxes(ctx, MAP, e);
    drawColorbar(ctx);
    state.mapCache = base;
  }

  // a plot's canvas reset to its cached static layer, ready to draw the moving parts in layout coordinates
  function fromCache(id, layout, cache) {
    const canvas = $(id);
    const ctx = canvas.getContext("2d");
    const dpr = canvas.width / layout.width;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.drawImage(cache, 0, 0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  function drawMap() {
    const ctx = fromCache("map", MAP, state.mapCache);
    const r = plotRect(MAP);
    const p = mapPixel(state.eta, state.beta);
    ctx.save();
    ctx.beginPath();
    ctx.rect(r.x, r.y, r.w, r.h);
    ctx.clip();
    ctx.strokeStyle = "rgba(255,255,255,0.8)";
    ctx.lineWidth = 1;
    ctx.setLineDash([2, 3]);
    ctx.beginPath();
    ctx.moveTo(r.x, p[1] + 0.5);
    ctx.lineTo(r.x + r.w, p[1] + 0.5);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.arc(p[0], p[1], 6, 0, 2 * Math.PI);
    ctx.lineWidth = 3;
    ctx.strokeStyle = "#000";
    ctx.stroke();
    ctx.lineWidth = 2;
    ctx.strokeStyle = POINT_COLOR;
    ctx.stroke();
    ctx.restore();
  }

  /* Distill's one-mode diagram over (alpha lambda in [0, 4], beta_D in [0, 1]): rho in viridis (1 - rho, linear),
     black where rho >= 1, the repeated-root curves alpha lambda = (1 -+ sqrt(beta_D))^2, the stability line
     alpha lambda = 2 + 2 beta_D and the five regimes' names. */
  function renderDistillBase() {
    const canvas = $("distill");
    const dpr = setupCanvas(canvas, DISTILL);
    const base = document.createElement("canvas");
    base.width = canvas.width;
    base.height = canvas.height;
    const ctx = base.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, base.width, base.height);
    const r = plotRect(DISTILL);
    const px0 = Math.round(r.x * dpr);
    const py0 = Math.round(r.y * dpr);
    const pw = Math.round((r.x + r.w) * dpr) - px0;
    const ph = Math.round((r.y + r.h) * dpr) - py0;
    const img = ctx.createImageData(pw, ph);
    for (let j = 0; j < ph; j++) {
      const bd = 1 - (j + 0.5) / ph;
      for (let i = 0; i < pw; i++) {
        const al = (4 * (i + 0.5)) / pw;
        const rho = spectralRadius(distillMatrix(al, bd, 1));
        const c = rho < 1 ? viridis(1 - rho) : [0, 0, 0];
        const o = 4 * (j * pw + i);
        img.data[o] = c[0];
        img.data[o + 1] = c[1];
        img.data[o + 2] = c[2];
        img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, px0, py0);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const X = (al) => r.x + (al / 4) * r.w;
    const Y = (bd) => r.y + (1 - bd) * r.h;
    ctx.save();
    ctx.beginPath();
    ctx.rect(r.x, r.y, r.w, r.h);
    ctx.clip();
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 1.3;
    for (const sgn of [-1, 1]) {
      ctx.beginPath();
      for (let k = 0; k <= 200; k++) {
        const bd = k / 200;
        const al = Math.pow(1 + sgn * Math.sqrt(bd), 2);
        if (k === 0) ctx.moveTo(X(al), Y(bd));
        else ctx.lineTo(X(al), Y(bd));
      }
      ctx.stroke();
    }
    ctx.setLineDash([5, 4]);
    ctx.beginPath();
    ctx.moveTo(X(2), Y(0));
    ctx.lineTo(X(4), Y(1));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.beginPath();
    ctx.arc(X(1), Y(0), 4, 0, 2 * Math.PI);
    ctx.fillStyle = "#fff";
    ctx.fill();
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 1;
    ctx.stroke();
    // the five regimes, numbered as in the legend below the diagram
    ctx.font = "bold 12px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    halo(ctx, "1", X(0.13), Y(0.05), "#fff");
    halo(ctx, "2 ripples", X(1.2), Y(0.6), "#fff");
    halo(ctx, "3", X(1) + 9, Y(0) - 10, "#fff");
    halo(ctx, "4", X(1.8), Y(0.05), "#fff");
    halo(ctx, "5 divergence", X(3.35), Y(0.42), "#fff");
    ctx.restore();
    ctx.strokeStyle = "#333";
    ctx.strokeRect(r.x + 0.5, r.y + 0.5, r.w - 1, r.h - 1);
    ctx.fillStyle = "#222";
    ctx.font = "11px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let k = 0; k <= 4; k++) ctx.fillText(String(k), X(k), r.y + r.h + 4);
    ctx.fillText("\u03b1\u03bb = 2\u03b7\u03b2\u03c3\u00b2", r.x + r.w / 2, r.y + r.h + 19);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let k = 0; k <= 4; k++) ctx.fillText(String(k / 4), r.x - 4, Y(k / 4));
    ctx.save();
    ctx.translate(11, r.y + r.h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText("\u03b2_D = 1 \u2212 \u03b2", 0, 0);
    ctx.restore();
    state.distillCache = base;
  }

  function drawDistill() {
    const ctx = fromCache("distill", DISTILL, state.distillCache);
    const r = plotRect(DISTILL);
    state.spectrum.forEach((s, i) => {
      const d = emaToDistill(state.eta, state.beta, s);
      const al = d[0] * d[2];
      const x = r.x + (Math.min(al, 4) / 4) * r.w;
      const y = r.y + (1 - d[1]) * r.h;
      ctx.beginPath();
      if (al > 4) {
        ctx.moveTo(x, y - 6);
        ctx.lineTo(x - 9, y);
        ctx.lineTo(x, y + 6);
        ctx.closePath();
      } else {
        ctx.arc(x, y, 5, 0, 2 * Math.PI);
      }
      ctx.fillStyle = modeColor(i);
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    });
  }

  function svgText(x, y, text, extra) {
    return '<text x="' + x.toFixed(1) + '" y="' + y.toFixed(1) + '" ' + (extra || "") + ">" + text + "</text>";
  }

  /* Eigenvalues of every mode's R in the complex plane, with the unit circle and the sqrt(1 - beta) circle. */
  function drawEigenvalues(eigs) {
    let reach = 1.15;
    for (const pair of eigs) for (const [re, im] of pair) reach = Math.max(reach, 1.08 * Math.hypot(re, im));
    reach = Math.min(reach, 4);
    const S = EIG.size;
    const c = S / 2;
    const k = (c - EIG.pad) / reach;
    const X = (re) => c + re * k;
    const Y = (im) => c - im * k;
    const parts = [];
    parts.push('<rect x="0" y="0" width="' + S + '" height="' + S + '" fill="#fff"/>');
    parts.push('<line x1="6" y1="' + c + '" x2="' + (S - 6) + '" y2="' + c + '" stroke="#999"/>');
    parts.push('<line x1="' + c + '" y1="6" x2="' + c + '" y2="' + (S - 6) + '" stroke="#999"/>');
    parts.push('<circle cx="' + c + '" cy="' + c + '" r="' + k.toFixed(2) + '" fill="none" stroke="#333"/>');
    const rd = Math.sqrt(1 - state.beta);
    parts.push(
      '<circle cx="' + c + '" cy="' + c + '" r="' + (rd * k).toFixed(2) +
        '" fill="none" stroke="#2b6cb0" stroke-dasharray="4 3"/>',
    );
    parts.push(svgText(X(0.72), Y(0.72) - 4, "|\u03bb| = 1", 'font-size="11" fill="#333"'));
    parts.push(
      svgText(X(-rd * 0.71) - 2, Y(-rd * 0.71) + 12, "\u221a(1\u2212\u03b2)", 'font-size="11" fill="#2b6cb0" text-anchor="end"'),
    );
    parts.push(svgText(S - 8, c - 4, "Re", 'font-size="11" text-anchor="end" fill="#555"'));
    parts.push(svgText(c + 4, 14, "Im", 'font-size="11" fill="#555"'));
    parts.push(svgText(X(1), c + 13, "1", 'font-size="10" text-anchor="middle" fill="#555"'));
    parts.push(svgText(X(-1), c + 13, "\u22121", 'font-size="10" text-anchor="middle" fill="#555"'));
    eigs.forEach((pair, i) => {
      pair.forEach(([re, im], j) => {
        const d = Math.hypot(re, im);
        const f = d > reach ? reach / d : 1;
        const x = X(re * f);
        const y = Y(im * f);
        const fill = j === 0 ? modeColor(i) : "#fff";
        parts.push(
          '<circle class="eig" data-mode="' + i + '" cx="' + x.toFixed(2) + '" cy="' + y.toFixed(2) +
            '" r="4.5" fill="' + fill + '" stroke="' + modeColor(i) + '" stroke-width="2"/>',
        );
      });
    });
    $("eig").innerHTML = parts.join("");
  }

  /* Polyline points of log10 |values| over t, one vertex per step or, for long runs, the max of each pixel's bucket. */
  function logPath(values, steps, X, Y, lo, hi) {
    const r = plotRect(ERR);
    const pts = [];
    const bucket = Math.max(1, Math.ceil(steps / r.w));
    for (let t0 = 0; t0 <= steps; t0 += bucket) {
      let m = -Infinity;
      for (let t = t0; t < Math.min(t0 + bucket, steps + 1); t++) {
        const v = Math.abs(values[t]);
        if (Number.isNaN(v)) break;
        m = Math.max(m, v);
      }
      if (m === -Infinity) break;
      const lv = m > 0 ? Math.log10(m) : lo;
      pts.push(X(t0).toFixed(1) + "," + Y(Math.min(Math.max(lv, lo), hi)).toFixed(1));
    }
    return pts.join(" ");
  }

  /* The error of every mode and the total over T steps (log scale), GD at the same eta and at its optimal eta. */
  function drawErrors(res) {
    const steps = state.steps;
    const r = plotRect(ERR);
    let vmin = Infinity;
    let vmax = 1;
    const scan = (a) => {
      for (let t = 0; t <= steps; t++) {
        const v = Math.abs(a[t]);
        if (Number.isNaN(v)) break;
        if (v > 0) vmin = Math.min(vmin, v);
        vmax = Math.max(vmax, v);
      }
    };
    res.mom.modes.forEach(scan);
    const sqrtTotal = (run) => run.total2.map(Math.sqrt);
    const tot = sqrtTotal(res.mom);
    const gd = sqrtTotal(res.gd);
    const gdo = sqrtTotal(res.gdOpt);
    [tot, gd, gdo].forEach(scan);
    const hi = Math.min(Math.ceil(Math.log10(vmax) + 1e-9), 10);
    let lo = Math.floor(Math.log10(Math.min(vmin, state.tol / 10)));
    lo = Math.max(lo, hi - 20, -300);
    const X = (t) => r.x + (t / steps) * r.w;
    const Y = (lv) => r.y + ((hi - lv) / (hi - lo)) * r.h;
    const parts = [];
    parts.push('<rect x="0" y="0" width="' + ERR.width + '" height="' + ERR.height + '" fill="#fff"/>');
    const every = Math.max(1, Math.ceil((hi - lo) / 8));
    for (let d = lo; d <= hi; d++) {
      if ((d - lo) % every !== 0 && d !== hi) continue;
      parts.push('<line x1="' + r.x + '" x2="' + (r.x + r.w) + '" y1="' + Y(d).toFixed(1) + '" y2="' + Y(d).toFixed(1) + '" stroke="#eee"/>');
      parts.push(svgText(r.x - 5, Y(d) + 4, decadeLabel(d), 'font-size="11" text-anchor="end" fill="#333"'));
    }
    const ty = Y(Math.log10(state.tol));
    parts.push('<line x1="' + r.x + '" x2="' + (r.x + r.w) + '" y1="' + ty.toFixed(1) + '" y2="' + ty.toFixed(1) + '" stroke="#b2182b" stroke-dasharray="6 3"/>');
    parts.push(svgText(r.x + r.w - 4, ty - 4, "tolerance \u03b5 = " + fmt(state.tol), 'font-size="11" text-anchor="end" fill="#b2182b"'));
    for (let k = 0; k <= 5; k++) {
      const t = Math.round((k * steps) / 5);
      parts.push(svgText(X(t), r.y + r.h + 14, String(t), 'font-size="11" text-anchor="middle" fill="#333"'));
    }
    parts.push(svgText(r.x + r.w / 2, r.y + r.h + 30, "step t", 'font-size="11" text-anchor="middle" fill="#333"'));
    parts.push(
      '<text transform="translate(13 ' + (r.y + r.h / 2) + ') rotate(-90)" font-size="11" text-anchor="middle" fill="#333">relative error</text>',
    );
    res.mom.modes.forEach((m, i) => {
      parts.push('<polyline fill="none" stroke="' + modeColor(i) + '" stroke-width="1.1" stroke-opacity="0.85" points="' + logPath(m, steps, X, Y, lo, hi) + '"/>');
    });
    parts.push('<polyline fill="none" stroke="#777" stroke-width="1.6" stroke-dasharray="2 3" points="' + logPath(gd, steps, X, Y, lo, hi) + '"/>');
    parts.push('<polyline fill="none" stroke="#777" stroke-width="1.6" stroke-dasharray="8 4" points="' + logPath(gdo, steps, X, Y, lo, hi) + '"/>');
    parts.push('<polyline fill="none" stroke="#000" stroke-width="2" points="' + logPath(tot, steps, X, Y, lo, hi) + '"/>');
    parts.push('<rect x="' + (r.x + 0.5) + '" y="' + (r.y + 0.5) + '" width="' + (r.w - 1) + '" height="' + (r.h - 1) + '" fill="none" stroke="#333"/>');
    $("err").innerHTML = parts.join("");
  }

  function setText(id, text) {
    const el = $(id);
    if (el) el.textContent = text;
  }

  function stepsText(n) {
    return Number.isFinite(n) ? String(n) : "\u221e";
  }

  function simText(run, settle) {
    if (run.diverged) return "diverged (step " + run.divergeStep + ")";
    if (settle < 0) return "not within T = " + state.steps;
    return String(settle);
  }

  /* Recompute everything that depends on the selected point and redraw the panels. */
  function update() {
    const { spectrum, eta, beta, tol, steps } = state;
    const ptEta = $("pt-eta");
    ptEta.textContent = fmt(eta);
    ptEta.dataset.value = String(eta);
    const ptBeta = $("pt-beta");
    ptBeta.textContent = fmt(beta);
    ptBeta.dataset.value = String(beta);
    $("in-eta").value = fmt(eta, 8);
    $("in-beta").value = fmt(beta, 8);
    const rate = momentumRate(eta, beta, spectrum);
    const etaGdOpt = gdOptimalLr(spectrum);
    const runs = {
      mom: simulate("momentum", eta, beta, spectrum, steps),
      gd: simulate("gd", eta, 1, spectrum, steps),
      gdOpt: simulate("gd", etaGdOpt, 1, spectrum, steps),
    };
    const rows = [
      ["mom", rate, runs.mom],
      ["gd", gdRate(eta, spectrum), runs.gd],
      ["gdopt", gdRate(etaGdOpt, spectrum), runs.gdOpt],
    ];
    for (const [key, rho, run] of rows) {
      setText(key + "-rate", fmt(rho));
      setText(key + "-pred", stepsText(stepsToTolerance(rho, tol)));
      setText(key + "-sim", simText(run, settleStep(run, tol, steps)));
      const fin = run.diverged ? NaN : Math.sqrt(run.total2[steps]);
      setText(key + "-final", run.diverged ? "\u2014" : fmt(fin, 4));
    }
    setText("gdopt-eta", fmt(etaGdOpt));
    const best = momentumBestInterval(beta, spectrum);
    setText("best-lo", fmt(best[0]));
    setText("best-hi", fmt(best[1]));
    setText("best-rate", fmt(best[2]));
    // inside up to rounding: at the joint optimum the interval is one eta, computed by two formulas
    const inside = eta >= best[0] * (1 - 1e-9) && eta <= best[1] * (1 + 1e-9);
    setText("best-where", inside ? "inside" : "outside");
    // parameters side by side
    const hb = emaToHeavyBall(eta, beta);
    const dd = emaToDistill(eta, beta, spectrum[0]);
    setText("par-gd-eta", fmt(eta));
    setText("par-ema-eta", fmt(eta));
    setText("par-ema-beta", fmt(beta));
    setText("par-hb-lr", fmt(hb[0]));
    setText("par-hb-m", fmt(hb[1]));
    setText("par-distill-alpha", fmt(dd[0]));
    setText("par-distill-betad", fmt(dd[1]));
    setText("code-optax", "optax.sgd(learning_rate=" + fmt(hb[0], 8) + ", momentum=" + fmt(hb[1], 8) + ")");
    setText("code-torch", "torch.optim.SGD(params, lr=" + fmt(hb[0], 8) + ", momentum=" + fmt(hb[1], 8) + ")");
    // per-mode table
    const eigs = spectrum.map((s) => momentumEigenvalues(eta, beta, s));
    const body = $("modes-body");
    body.textContent = "";
    spectrum.forEach((s, i) => {
      const tr = document.createElement("tr");
      tr.dataset.mode = String(i);
      const code = momentumRegime(eta, beta, s);
      const d = emaToDistill(eta, beta, s);
      const cells = [
        ["mode", fmt(s)],
        ["regime", REGIMES[code]],
        ["distill", DISTILL_REGIMES[distillRegime(d[0] * d[2], d[1])]],
        ["rho", fmt(spectralRadius(momentumMatrix(eta, beta, s)))],
        ["eig-plus", fmtComplex(eigs[i][0][0], eigs[i][0][1], 5)],
        ["eig-minus", fmtComplex(eigs[i][1][0], eigs[i][1][1], 5)],
        ["alpha-lambda", fmt(d[0] * d[2])],
        ["final", runs.mom.diverged ? "\u2014" : fmt(Math.abs(runs.mom.modes[i][steps]), 4)],
      ];
      cells.forEach(([cls, text], k) => {
        const td = document.createElement("td");
        td.className = cls;
        if (k === 0) {
          const sw = document.createElement("span");
          sw.className = "swatch";
          sw.style.background = modeColor(i);
          td.appendChild(sw);
          td.appendChild(document.createTextNode(text));
        } else {
          td.textContent = text;
        }
        if (cls === "regime") td.style.borderLeft = "4px solid " + REGIME_COLORS[code];
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    drawMap();
    drawDistill();
    drawEigenvalues(eigs);
    drawErrors(runs);
    state.last = { rate: rate, runs: runs };
  }

  function select(eta, beta) {
    if (!(eta > 0) || !Number.isFinite(eta)) throw new Error("\u03b7 must be a finite number > 0");
    if (!(beta > 0 && beta <= 1)) throw new Error("\u03b2 must lie in (0, 1]");
    state.eta = eta;
    state.beta = beta;
    update();
  }

  /* Switch to a new spectrum: recompute the map and move the point to the spectrum's joint optimum. */
  function setSpectrum(spectrum, point) {
    state.spectrum = spectrum.slice();
    state.ext = mapExtents(state.spectrum);
    state.colorHi = Math.log10(1 - momentumOptimum(state.spectrum)[2]);
    $("in-spectrum").value = state.spectrum.map((s) => fmt(s, 12)).join(", ");
    const smin = arrayMin(spectrum);
    const smax = arrayMax(spectrum);
    setText("legend-min", fmt(smin));
    setText("legend-max", fmt(smax));
    const opt = momentumOptimum(state.spectrum);
    setText("opt-eta", fmt(opt[0]));
    setText("opt-beta", fmt(opt[1]));
    setText("opt-rate", fmt(opt[2]));
    setText("opt-pred", stepsText(stepsToTolerance(opt[2], state.tol)));
    setText("modes-count", String(spectrum.length));
    document.querySelectorAll("#presets button").forEach((b) => {
      const same = JSON.stringify(JSON.parse(b.dataset.spectrum)) === JSON.stringify(state.spectrum);
      b.setAttribute("aria-pressed", same ? "true" : "false");
    });
    renderMapBase();
    const p = point || opt;
    select(p[0], p[1]);
  }

  function showError(id, message) {
    const el = $(id);
    el.textContent = message || "";
    el.hidden = !message;
  }

  function applySpectrumField() {
    try {
      const spec = parseSpectrum($("in-spectrum").value);
      showError("spectrum-error", "");
      $("in-spectrum").removeAttribute("aria-invalid");
      setSpectrum(spec);
    } catch (err) {
      $("in-spectrum").setAttribute("aria-invalid", "true");
      showError("spectrum-error", err.message);
    }
  }

  function parsePositive(text, what) {
    const v = Number(String(text).trim());
    if (String(text).trim() === "" || !Number.isFinite(v)) throw new Error(what + ": not a finite number");
    return v;
  }

  function applyPointFields() {
    try {
      const eta = parsePositive($("in-eta").value, "\u03b7");
      const beta = parsePositive($("in-beta").value, "\u03b2");
      const steps = parsePositive($("in-steps").value, "T");
      const tol = parsePositive($("in-tol").value, "\u03b5");
      if (!(Number.isInteger(steps) && steps >= 1 && steps <= MAX_STEPS)) {
        throw new Error("T must be an integer in [1, " + MAX_STEPS + "]");
      }
      if (!(tol > 0 && tol < 1)) throw new Error("\u03b5 must lie in (0, 1)");
      if (!(eta > 0)) throw new Error("\u03b7 must be > 0");
      if (!(beta > 0 && beta <= 1)) throw new Error("\u03b2 must lie in (0, 1]");
      showError("point-error", "");
      state.steps = steps;
      state.tol = tol;
      setText("opt-pred", stepsText(stepsToTolerance(momentumOptimum(state.spectrum)[2], tol)));
      select(eta, beta);
    } catch (err) {
      showError("point-error", err.message);
    }
  }

  function canvasXY(canvas, ev) {
    const b = canvas.getBoundingClientRect();
    return [ev.clientX - b.left, ev.clientY - b.top];
  }

  function insidePlot(g, xy) {
    const r = plotRect(g);
    return xy[0] >= r.x && xy[0] <= r.x + r.w && xy[1] >= r.y && xy[1] <= r.y + r.h;
  }

  function init() {
    const data = JSON.parse($("sim-data").textContent);
    state.tol = data.tol;
    state.steps = data.steps;
    $("in-tol").value = fmt(data.tol);
    $("in-steps").value = String(data.steps);
    const presets = $("presets");
    data.presets.forEach((p) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = p.name;
      b.dataset.spectrum = JSON.stringify(p.spectrum);
      b.addEventListener("click", () => {
        showError("spectrum-error", "");
        $("in-spectrum").removeAttribute("aria-invalid");
        setSpectrum(p.spectrum);
      });
      presets.appendChild(b);
    });
    $("spectrum-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      applySpectrumField();
    });
    $("point-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      applyPointFields();
    });
    $("to-optimum").addEventListener("click", () => {
      const o = momentumOptimum(state.spectrum);
      select(o[0], o[1]);
    });
    const map = $("map");
    const pick = (ev) => {
      const p = mapPoint(...canvasXY(map, ev));
      select(p[0], p[1]);
    };
    map.addEventListener("pointerdown", (ev) => {
      if (!insidePlot(MAP, canvasXY(map, ev))) return;
      state.dragging = true;
      if (map.setPointerCapture) map.setPointerCapture(ev.pointerId);
      pick(ev);
    });
    map.addEventListener("pointermove", (ev) => {
      if (state.dragging) pick(ev);
    });
    const stop = () => {
      state.dragging = false;
    };
    map.addEventListener("pointerup", stop);
    map.addEventListener("pointercancel", stop);
    renderDistillBase();
    setSpectrum(data.spectrum, data.point);
    document.documentElement.dataset.ready = "1";
  }

  window.SimExplorer = {
    REGIMES: REGIMES,
    DISTILL_REGIMES: DISTILL_REGIMES,
    DIVERGENCE_BOUND: DIVERGENCE_BOUND,
    gdFactor: gdFactor,
    gdRate: gdRate,
    gdStableLr: gdStableLr,
    gdOptimalLr: gdOptimalLr,
    gdOptimalRate: gdOptimalRate,
    stepsToTolerance: stepsToTolerance,
    momentumMatrix: momentumMatrix,
    momentumTrace: momentumTrace,
    momentumDeterminant: momentumDeterminant,
    momentumDiscriminant: momentumDiscriminant,
    momentumEigenvalues: momentumEigenvalues,
    momentumRegime: momentumRegime,
    momentumRepeatedRootLrs: momentumRepeatedRootLrs,
    momentumStableLr: momentumStableLr,
    momentumThresholds: momentumThresholds,
    momentumRate: momentumRate,
    momentumBestInterval: momentumBestInterval,
    momentumOptimum: momentumOptimum,
    spectralRadius: spectralRadius,
    emaToHeavyBall: emaToHeavyBall,
    heavyBallToEma: heavyBallToEma,
    emaToDistill: emaToDistill,
    distillToEma: distillToEma,
    distillMatrix: distillMatrix,
    distillRegime: distillRegime,
    simulate: simulate,
    settleStep: settleStep,
    parseSpectrum: parseSpectrum,
    mapExtents: mapExtents,
    fmt: fmt,
    view: {
      state: () => ({ spectrum: state.spectrum.slice(), eta: state.eta, beta: state.beta, tol: state.tol, steps: state.steps }),
      select: select,
      setSpectrum: setSpectrum,
      mapPixel: mapPixel,
      mapPoint: mapPoint,
      extents: () => Object.assign({}, state.ext),
    },
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
