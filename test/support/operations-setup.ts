// The default timeout of the `operations` jest project (jest.config.js). Its tests wait on purpose
// (auth timeouts, breaker cooldowns, cache TTLs, heartbeats, floods: up to about 3 s per test), so
// jest's 5 s default would fail them on a loaded machine. A project-level `testTimeout` would be
// the natural place, but jest 30 ignores it (jest-circus reads only the global `testTimeout`), so
// it is set here, before each test file runs; a file's own jest.setTimeout still overrides it.
jest.setTimeout(30_000);
