// A small SVG sparkline (battery history), 0-100 on the y axis.

export function Sparkline({ points, width = 280, height = 48 }: { points: { t: number; v: number }[]; width?: number; height?: number }) {
  if (points.length < 2) return <div className="sparkline-empty muted">collecting battery history…</div>;
  const t0 = points[0].t;
  const span = Math.max(1, points[points.length - 1].t - t0);
  const xy = points.map((p) => [((p.t - t0) / span) * width, height - 2 - (Math.max(0, Math.min(100, p.v)) / 100) * (height - 4)]);
  const d = xy.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join('');
  const last = points[points.length - 1].v;
  const color = last < 20 ? '#ef4444' : last < 40 ? '#eab308' : '#22c55e';
  return (
    <svg className="sparkline" viewBox={`0 0 ${width} ${height}`} width="100%" height={height} preserveAspectRatio="none" role="img" aria-label={`battery history, now ${last.toFixed(0)}%`}>
      <line x1="0" x2={width} y1={height - 2 - 0.2 * (height - 4)} y2={height - 2 - 0.2 * (height - 4)} className="spark-threshold" />
      <path d={`${d}L${width},${height}L0,${height}Z`} fill={color} opacity="0.15" />
      <path d={d} fill="none" stroke={color} strokeWidth="2" vectorEffect="non-scaling-stroke" />
    </svg>
  );
}
