// The memory stores, the single-process defaults, against the shared store contracts.

import { MemoryClientStore, MemoryReplayCache, MemoryRevocationStore } from 'express-client-credentials';
import { clientStoreContract, replayCacheContract, revocationStoreContract } from './contract.js';

revocationStoreContract('MemoryRevocationStore', () => new MemoryRevocationStore());
replayCacheContract('MemoryReplayCache', () => new MemoryReplayCache());
clientStoreContract('MemoryClientStore', (records) => new MemoryClientStore(records));
