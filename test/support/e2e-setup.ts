import { takeContractViolations } from './ws-client';

// Every frame any TestClient received during a test must match its schema in docs/asyncapi.yaml.
afterEach(() => {
  const violations = takeContractViolations();
  if (violations.length > 0) {
    throw new Error(`the gateway sent frames that break docs/asyncapi.yaml:\n${violations.slice(0, 10).join('\n')}`);
  }
});
