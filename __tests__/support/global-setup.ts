// jest globalSetup: probes Redis and PostgreSQL once per run; the store suites read the outcome.

import { probeServices } from './service-probe';

export default probeServices;
