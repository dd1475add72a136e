// A bounded, observable list kept for as long as the page is open: the recent events of the
// stream and the dashboard's usage samples. Snapshots are immutable arrays (a new one on each
// push), so React's useSyncExternalStore can tell when they changed.
import { useSyncExternalStore } from "react";

export interface Ring<T> {
  push(item: T): void;
  /** Oldest first; the same array until the next push. */
  items(): readonly T[];
  subscribe(listener: () => void): () => void;
}

/** Keeps the newest `maxItems` items. */
export function createRing<T>(maxItems: number): Ring<T> {
  let snapshot: readonly T[] = [];
  const listeners = new Set<() => void>();
  return {
    push(item) {
      const next = snapshot.length >= maxItems ? snapshot.slice(snapshot.length - maxItems + 1) : [...snapshot];
      next.push(item);
      snapshot = next;
      for (const l of [...listeners]) l();
    },
    items: () => snapshot,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export function useRing<T>(ring: Ring<T>): readonly T[] {
  return useSyncExternalStore(ring.subscribe, ring.items);
}
