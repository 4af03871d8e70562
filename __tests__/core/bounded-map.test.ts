// The one bound of every cache an unauthenticated request can fill.

import { BoundedMap } from '../../lib/core/bounded-map.js';

describe('BoundedMap: at most maxEntries, the entry set longest ago out first', () => {
  it('never holds more than maxEntries, dropping the oldest for a new key', () => {
    const map = new BoundedMap<string, number>(3);
    for (let i = 0; i < 10; i++) map.set(`k${i}`, i);
    expect([...map.entries()]).toEqual([['k7', 7], ['k8', 8], ['k9', 9]]);
  });

  it('moves a key set again to the newest place, so that a cache can keep what it serves', () => {
    const map = new BoundedMap<string, number>(2);
    map.set('a', 1).set('b', 2).set('a', 3).set('c', 4);
    expect([...map.entries()]).toEqual([['a', 3], ['c', 4]]);
  });

  it('evicts nothing when a key already held is set again at the cap', () => {
    const map = new BoundedMap<string, number>(2);
    map.set('a', 1).set('b', 2).set('b', 5);
    expect([...map.keys()]).toEqual(['a', 'b']);
    expect(map.get('b')).toBe(5);
  });
});
