/**
 * The Prometheus text, rendered at most once per `maxAgeMs`: prom-client's render (the default
 * metrics read the process, the event loop and the heap) costs milliseconds of the event loop
 * the milter shares, so a flood of scrapes must not pay it per request. Scrapes that come while
 * a render runs wait for that one.
 */
export interface RenderCache {
  get(): Promise<string>;
  /** Bodies rendered so far; every other get() was answered from the cache. */
  readonly renders: number;
}

export function cachedRender(render: () => Promise<string>, maxAgeMs: number, now: () => number = () => performance.now()): RenderCache {
  let body: string | undefined;
  let renderedAt = 0;
  let running: Promise<string> | undefined;
  let renders = 0;
  return {
    get renders() {
      return renders;
    },
    get() {
      if (body !== undefined && now() - renderedAt < maxAgeMs) return Promise.resolve(body);
      // render() runs a microtask later: even a synchronous throw settles `running` after it is set.
      running ??= Promise.resolve()
        .then(() => {
          renders++;
          return render();
        })
        .then((fresh) => {
          body = fresh;
          renderedAt = now();
          return fresh;
        })
        .finally(() => {
          running = undefined;
        });
      return running;
    },
  };
}
