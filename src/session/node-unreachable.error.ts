/**
 * A command about a user's connection (kick, profile change) could not be carried out: the
 * registry says the user is online on a node that did not answer in time (stopped, partitioned,
 * or killed and not yet swept). Nothing is known about whether it happened; the caller may retry.
 * The Server API answers it 503 (src/api/api-exception.filter.ts).
 */
export class NodeUnreachableError extends Error {
  constructor() {
    super("the user's node did not answer");
    this.name = 'NodeUnreachableError';
  }
}
