// Code loaded on demand without React.lazy. React holds back showing content that
// replaces a Suspense fallback until 300 ms after the fallback appeared, so a page
// opened cold (app, then view, then chart, each a fallback) waited 300 ms per level
// with every file already loaded. Here a component whose module is in memory renders
// at once, and one still loading shows its placeholder from plain state.
import { useEffect, useState, type ComponentType, type ReactNode } from "react";

export interface LazyComponent<P extends object> {
  (props: P): ReactNode;
  /** Start loading (idempotent); resolves when the component can render at once. */
  preload: () => Promise<void>;
}

export function lazyComponent<P extends object>(
  load: () => Promise<ComponentType<P>>,
  placeholder: () => ReactNode,
): LazyComponent<P> {
  let loaded: ComponentType<P> | undefined;
  let pending: Promise<void> | undefined;
  const preload = () =>
    (pending ??= load().then(
      (found) => {
        loaded = found;
      },
      (error: unknown) => {
        pending = undefined; // a failed chunk load is tried again next time
        throw error;
      },
    ));

  function Lazy(props: P): ReactNode {
    // Fixed per mount: a component swapped in later would remount its subtree.
    const [found, setFound] = useState<{ component?: ComponentType<P>; error?: unknown }>(() => ({
      component: loaded,
    }));
    useEffect(() => {
      if (found.component || found.error) return;
      let live = true;
      preload().then(
        () => live && setFound({ component: loaded }),
        (error: unknown) => live && setFound({ error }),
      );
      return () => {
        live = false;
      };
    }, [found]);
    if (found.error) throw found.error; // to the nearest error boundary, as React.lazy does
    const Component = found.component;
    return Component ? <Component {...props} /> : placeholder();
  }
  return Object.assign(Lazy, { preload });
}
