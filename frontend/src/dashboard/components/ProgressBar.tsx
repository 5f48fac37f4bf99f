// A thin progress bar with its percentage.

export function ProgressBar({ value }: { value: number }) {
  const f = Math.max(0, Math.min(1, Number(value) || 0));
  return (
    <span className="progress" title={`${(f * 100).toFixed(0)}%`}>
      <span className="progress-track">
        <i style={{ width: `${(f * 100).toFixed(0)}%` }} />
      </span>
      <span className="progress-text">{(f * 100).toFixed(0)}%</span>
    </span>
  );
}
