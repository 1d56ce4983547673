import { useParam } from "./common";

/** Axis, smoothing and scale of metric charts, kept in the URL (x=, smooth=, log=). */
export function useChartSettings() {
  const [x, setX] = useParam("x", "step");
  const [smoothText, setSmooth] = useParam("smooth", "0");
  const [log, setLog] = useParam("log", "0");
  const smoothing = Math.min(0.99, Math.max(0, Number(smoothText) || 0));
  return {
    x: (x === "time" ? "time" : "step") as "step" | "time",
    smoothing,
    log: log === "1",
    setX,
    setSmooth: (v: number) => setSmooth(v ? String(v) : "0"),
    setLog: (on: boolean) => setLog(on ? "1" : "0"),
  };
}

export function ChartControls() {
  const s = useChartSettings();
  return (
    <div className="chart-controls">
      <label>
        X axis{" "}
        <select aria-label="X axis" value={s.x} onChange={(e) => s.setX(e.target.value)}>
          <option value="step">step</option>
          <option value="time">time</option>
        </select>
      </label>
      <label>
        Smoothing{" "}
        <input
          aria-label="Smoothing"
          type="range"
          min={0}
          max={0.99}
          step={0.01}
          value={s.smoothing}
          onChange={(e) => s.setSmooth(Number(e.target.value))}
        />{" "}
        <span className="mono">{s.smoothing.toFixed(2)}</span>
      </label>
      <label>
        <input
          type="checkbox"
          aria-label="Log scale"
          checked={s.log}
          onChange={(e) => s.setLog(e.target.checked)}
        />{" "}
        log scale
      </label>
    </div>
  );
}
