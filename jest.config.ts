// Tests run the TypeScript sources through ts-jest; the package name maps to lib/ as in tsconfig paths.
import type { Config } from 'jest';

const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  moduleNameMapper: {
    '^express-client-credentials$': '<rootDir>/lib/index.ts',
    '^express-client-credentials/testing$': '<rootDir>/lib/testing.ts',
    '^express-client-credentials/client$': '<rootDir>/lib/client.ts',
    '^express-client-credentials/redis$': '<rootDir>/lib/redis.ts',
    '^express-client-credentials/postgres$': '<rootDir>/lib/postgres.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testTimeout: 20_000,
  // Probes Redis and PostgreSQL once: their suites are skipped without them, unless REQUIRE_SERVICES is set.
  globalSetup: '<rootDir>/__tests__/support/global-setup.ts',
};

export default config;
