import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { AuthGuard } from './auth.guard';

describe('AuthGuard', () => {
  const guard = new AuthGuard();
  const wsContext = (client: unknown) => {
    const context = new ExecutionContextHost([client]);
    context.setType('ws');
    return context;
  };

  it.each([
    [true, true],
    [false, false],
    [undefined, false],
    ['true', false],
  ])('authenticated=%p is allowed: %p', (authenticated, expected) => {
    const client = { authenticated } as unknown as { authenticated: boolean };
    expect(guard.allows(client)).toBe(expected);
    expect(guard.canActivate(wsContext(client))).toBe(expected);
  });
});
