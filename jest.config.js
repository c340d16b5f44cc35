// Three projects: unit tests beside the code (src/**/*.spec.ts), e2e tests against the real app
// (test/**/*.e2e-spec.ts), and the operations e2e tests (test/e2e/operations/), which wait on
// purpose and so get a 30 s default timeout (test/support/operations-setup.ts: jest 30 ignores a
// per-project `testTimeout`). Unit tests keep jest's 5 s default.
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.test.json' }];
const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  moduleFileExtensions: ['ts', 'js', 'json'],
};
const e2e = { ...common, rootDir: '.', setupFilesAfterEnv: ['<rootDir>/test/support/e2e-setup.ts'], slowTestThreshold: 30 };
const OPERATIONS = '<rootDir>/test/e2e/operations/';
module.exports = {
  projects: [
    { ...common, displayName: 'unit', rootDir: '.', testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/support/**/*.spec.ts', '<rootDir>/test/contract/**/*.spec.ts'] },
    { ...e2e, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'], testPathIgnorePatterns: ['/node_modules/', OPERATIONS] },
    {
      ...e2e,
      displayName: 'operations',
      testMatch: [`${OPERATIONS}**/*.e2e-spec.ts`],
      setupFilesAfterEnv: [...e2e.setupFilesAfterEnv, '<rootDir>/test/support/operations-setup.ts'],
    },
  ],
};
