/**
 * Connected-component labelling of binary masks, the way the two AU-PRO paths of docs/paper.md §4 find
 * defect regions: `skimage.measure.label(mask)` (exact path, section 4.1; default connectivity for 2-D is
 * full, i.e. 8-connected) and cv2 `connectedComponentsWithStats(mask, connectivity=8)` (ADEval path, 4.2).
 * Both number the regions 1..count in raster order of each region's first pixel, so the labels here are
 * the same integers as theirs, not only the same partition.
 *
 * @module
 */

/** The result of {@linkcode labelComponents}. */
export interface Components {
  /** Per pixel: 0 for background, else the region's label in 1..count (raster order of first pixel). */
  labels: Int32Array;
  /** Number of regions (background not counted). */
  count: number;
  /** Pixel count per label, length count + 1; `areas[0]` is the background, as cv2's stats row 0. */
  areas: Int32Array;
}

/**
 * Labels the connected foreground (non-zero) regions of a row-major `height` x `width` mask with a two-pass
 * union-find. `connectivity` 8 (default) joins diagonal neighbours too, as skimage's and cv2's defaults
 * for the metrics; 4 joins only edge neighbours.
 */
export function labelComponents(
  mask: ArrayLike<number>,
  height: number,
  width: number,
  connectivity: 4 | 8 = 8,
): Components {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 0 || width < 0) {
    throw new Error(`labelComponents: height and width must be non-negative integers, got ${height}x${width}`);
  }
  if (mask.length !== height * width) {
    throw new Error(
      `labelComponents: mask has ${mask.length} elements, expected height*width = ${height}*${width} = ${
        height * width
      }`,
    );
  }
  if (connectivity !== 4 && connectivity !== 8) {
    throw new Error(`labelComponents: connectivity must be 4 or 8, got ${connectivity}`);
  }
  const n = height * width;
  const labels = new Int32Array(n);
  // provisional labels start at 1; parent[l] is the union-find parent (index 0 unused)
  let parent = new Int32Array(Math.max(16, (n >> 2) + 1));
  let next = 1;
  const find = (x: number): number => {
    let r = x;
    while (parent[r] !== r) r = parent[r];
    // path compression keeps later finds O(1) on large blobs
    while (parent[x] !== r) {
      const p = parent[x];
      parent[x] = r;
      x = p;
    }
    return r;
  };
  const union = (a: number, b: number): number => {
    const ra = find(a), rb = find(b);
    if (ra === rb) return ra;
    // the smaller root wins, so a root is always its set's earliest provisional label
    if (ra < rb) {
      parent[rb] = ra;
      return ra;
    }
    parent[ra] = rb;
    return rb;
  };
  const diag = connectivity === 8;
  // first pass: provisional labels from the already-visited neighbours (W, NW, N, NE)
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      if (mask[i] === 0) continue;
      let l = 0;
      if (x > 0 && labels[i - 1] !== 0) l = labels[i - 1];
      if (y > 0) {
        const up = i - width;
        if (labels[up] !== 0) l = l === 0 ? labels[up] : union(l, labels[up]);
        if (diag) {
          if (x > 0 && labels[up - 1] !== 0) l = l === 0 ? labels[up - 1] : union(l, labels[up - 1]);
          if (x + 1 < width && labels[up + 1] !== 0) l = l === 0 ? labels[up + 1] : union(l, labels[up + 1]);
        }
      }
      if (l === 0) {
        if (next >= parent.length) {
          const grown = new Int32Array(parent.length * 2);
          grown.set(parent);
          parent = grown;
        }
        parent[next] = next;
        l = next++;
      }
      labels[i] = l;
    }
  }
  // second pass: final labels numbered by first appearance in raster order (skimage's and cv2's order)
  const finalOf = new Int32Array(next);
  let count = 0;
  const areaList: number[] = [0];
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (l === 0) {
      areaList[0]++;
      continue;
    }
    const r = find(l);
    let f = finalOf[r];
    if (f === 0) {
      f = ++count;
      finalOf[r] = f;
      areaList.push(0);
    }
    labels[i] = f;
    areaList[f]++;
  }
  return { labels, count, areas: Int32Array.from(areaList) };
}

/** Whether a mask has any non-zero pixel (images without a defect have no regions to label). */
export function hasForeground(mask: ArrayLike<number>): boolean {
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) return true;
  return false;
}
