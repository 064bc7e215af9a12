/**
 * Prometheus text for /metrics: reconcile passes, failures, durations, units by state.
 */
export class Metrics {
  passes = 0;
  failures = 0;
  durationSum = 0;
  unitsByState = new Map<string, number>();

  recordPass(seconds: number, failed: boolean): void {
    this.passes++;
    if (failed) this.failures++;
    this.durationSum += seconds;
  }

  setUnitStates(states: string[]): void {
    this.unitsByState = new Map();
    for (const s of states) this.unitsByState.set(s, (this.unitsByState.get(s) ?? 0) + 1);
  }

  render(): string {
    const lines = [
      "# HELP houston_reconcile_passes_total Reconcile passes run.",
      "# TYPE houston_reconcile_passes_total counter",
      `houston_reconcile_passes_total ${this.passes}`,
      "# HELP houston_reconcile_failures_total Reconcile passes that ended with an error.",
      "# TYPE houston_reconcile_failures_total counter",
      `houston_reconcile_failures_total ${this.failures}`,
      "# HELP houston_reconcile_duration_seconds Time spent in reconcile passes.",
      "# TYPE houston_reconcile_duration_seconds summary",
      `houston_reconcile_duration_seconds_sum ${this.durationSum.toFixed(6)}`,
      `houston_reconcile_duration_seconds_count ${this.passes}`,
      "# HELP houston_units Units managed by Houston on this host, by systemd ActiveState.",
      "# TYPE houston_units gauge",
      ...[...this.unitsByState].sort().map(([state, n]) => `houston_units{state="${state}"} ${n}`),
    ];
    return `${lines.join("\n")}\n`;
  }
}
