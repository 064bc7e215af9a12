/**
 * `{service}`, `{group}`, `{environment}` and per-environment variables in unit and file text.
 * Only known names are replaced, and never `${NAME}` (shell syntax in ExecStart lines or scripts).
 */
export function substitute(text: string, vars: Record<string, string>): string {
  return text.replace(
    /(?<!\$)\{([A-Za-z_][A-Za-z0-9_.-]*)\}/g,
    (whole, name: string) => (Object.hasOwn(vars, name) ? vars[name] : undefined) ?? whole,
  );
}
