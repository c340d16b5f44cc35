/**
 * Log output from the tests' side: the lines of what an app or a process wrote (a TestGateway's
 * `logs`, a Deployment's `logs()`, a child's stdout), and those lines as the JSON objects that
 * production logging writes (one per line).
 */

/** The non-blank lines of `output` (one string, or chunks that may each hold several lines). */
export function logLines(output: string | readonly string[]): string[] {
  return (typeof output === 'string' ? [output] : output).flatMap((chunk) => chunk.split('\n')).filter((line) => line.trim() !== '');
}

/** Every line of `output` parsed as one JSON object; throws `not a JSON object: <line>` at the first that is not. */
export function jsonLines(output: string | readonly string[]): Record<string, unknown>[] {
  return logLines(output).map((line) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`not a JSON object: ${line}`);
    return parsed as Record<string, unknown>;
  });
}
