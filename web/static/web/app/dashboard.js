/* Staff dashboard: commands per minute, success rate and projection lag, pushed and drawn on canvas. */

import { on } from "../live.js";
import { $, el } from "./dom.js";

const lagHistory = [];
const COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0a7f8f"];

function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "12px system-ui, sans-serif";
  return { ctx, width, height };
}

function axes(ctx, width, height, max, unit) {
  const pad = { left: 40, bottom: 20, top: 10, right: 10 };
  ctx.strokeStyle = "#d0d7de";
  ctx.fillStyle = "#57606a";
  for (let i = 0; i <= 4; i++) {
    const y = pad.top + ((height - pad.top - pad.bottom) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.left, y);
    ctx.lineTo(width - pad.right, y);
    ctx.stroke();
    const value = max - (max * i) / 4;
    ctx.fillText(`${Number.isInteger(value) ? value : value.toFixed(1)}${unit}`, 2, y + 4);
  }
  return pad;
}

function drawBars(canvas, values, labels) {
  const { ctx, width, height } = prepare(canvas);
  const max = Math.max(4, ...values);
  const pad = axes(ctx, width, height, max, "");
  const step = (width - pad.left - pad.right) / values.length;
  ctx.fillStyle = COLOURS[0];
  values.forEach((value, i) => {
    const h = ((height - pad.top - pad.bottom) * value) / max;
    ctx.fillRect(pad.left + i * step + 2, height - pad.bottom - h, Math.max(step - 4, 1), h);
  });
  ctx.fillStyle = "#57606a";
  if (labels.length) {
    ctx.fillText(labels[0], pad.left, height - 4);
    const last = labels[labels.length - 1];
    ctx.fillText(last, width - pad.right - ctx.measureText(last).width, height - 4);
  }
}

function drawLines(canvas, series, max, unit) {
  const { ctx, width, height } = prepare(canvas);
  const pad = axes(ctx, width, height, max, unit);
  const plotWidth = width - pad.left - pad.right;
  const plotHeight = height - pad.top - pad.bottom;
  series.forEach(({ values, colour }) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    values.forEach((value, i) => {
      if (value === null) return;
      const x = pad.left + (values.length > 1 ? (plotWidth * i) / (values.length - 1) : plotWidth);
      const y = pad.top + plotHeight - (plotHeight * Math.min(value, max)) / max;
      if (started) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      started = true;
    });
    ctx.stroke();
    ctx.lineWidth = 1;
    // Dots too, so that a single sample (or isolated minutes) shows.
    ctx.fillStyle = colour;
    values.forEach((value, i) => {
      if (value === null) return;
      const x = pad.left + (values.length > 1 ? (plotWidth * i) / (values.length - 1) : plotWidth);
      const y = pad.top + plotHeight - (plotHeight * Math.min(value, max)) / max;
      ctx.beginPath();
      ctx.arc(x, y, 3, 0, 2 * Math.PI);
      ctx.fill();
    });
  });
}

export function setupDashboard() {
  on("command.stats", (message) => {
    const minutes = message.minutes || [];
    const labels = minutes.map((m) => new Date(m.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    const sent = minutes.map((m) => m.sent);
    drawBars($("#chart-rate"), sent, labels);
    const rate = minutes.map((m) => {
      const finished = m.succeeded + m.rejected + m.failed;
      return finished ? (100 * m.succeeded) / finished : null;
    });
    drawLines($("#chart-success"), [{ values: rate, colour: COLOURS[2] }], 100, "%");
    const last = minutes[minutes.length - 1] || { sent: 0 };
    const finished = minutes.reduce((acc, m) => acc + m.succeeded + m.rejected + m.failed, 0);
    const succeeded = minutes.reduce((acc, m) => acc + m.succeeded, 0);
    $("#chart-rate-text").textContent = `${last.sent} commands this minute.`;
    $("#chart-success-text").textContent = finished ? `${Math.round((100 * succeeded) / finished)} % succeeded over ${minutes.length} minutes.` : "No finished commands yet.";
  });
  on("projection.lag", (message) => {
    lagHistory.push({ at: Date.now(), projections: message.projections });
    if (lagHistory.length > 150) lagHistory.shift();
    const names = message.projections.map((p) => p.name);
    const series = names.map((name, i) => ({
      colour: COLOURS[i % COLOURS.length],
      values: lagHistory.map((sample) => {
        const found = sample.projections.find((p) => p.name === name);
        return found ? found.lag_events : null;
      }),
    }));
    const max = Math.max(10, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
    drawLines($("#chart-lag"), series, max, "");
    $("#lag-table tbody").replaceChildren(...message.projections.map((p, i) =>
      el("tr", {},
        el("th", { scope: "row" }, el("span", { class: "swatch", style: `background:${COLOURS[i % COLOURS.length]}` }), p.name),
        el("td", { text: p.lag_events }),
        el("td", { text: p.lag_seconds.toFixed(1) }))));
  });
}
