/**
 * The reference authorization server's users: the users file format, loadUsers and the token ->
 * profile directory live in src/demo-users/ (shared with the gateway's demo verifier); this
 * re-export keeps the older import path working for the server's own callers (tests, bench).
 */
export { BUNDLED_USERS_SOURCE, loadUsers, parseUsers, UserDirectory, UsersFileError } from '../demo-users/users';
export type { DemoUser } from '../demo-users/users';
