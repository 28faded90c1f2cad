// The dashboard's files as the coordinator serves them: the page, its script and style, uPlot;
// and the page with the stream so far in its snapshot block (issue 14: drawn before `load`).

import { describe, expect, it } from 'vitest';
import { loadDashboardAssets, pageWithSnapshot } from '../../coordinator/dashboard-assets.js';

describe('dashboard assets', () => {
  const loaded = loadDashboardAssets();
  if ('problem' in loaded) throw new Error(loaded.problem);
  const page = loaded.assets.get('/');

  it('serves the page, its script and style, and uPlot', () => {
    expect([...loaded.assets.keys()].sort()).toEqual(['/', '/dashboard.css', '/dashboard.js', '/uplot.css', '/uplot.js']);
  });

  it('puts the snapshot into the page’s data block, once, before the scripts', () => {
    if (page === undefined) throw new Error('no page');
    const html = pageWithSnapshot(page.body, '[{"type":"history","events":0,"stepStride":1,"stepsSeen":0,"time":1}]').toString('utf8');
    const block = '<script type="application/json" id="snapshot">[{"type":"history","events":0,"stepStride":1,"stepsSeen":0,"time":1}]</script>';
    expect(html.split(block)).toHaveLength(2);
    expect(html.indexOf(block)).toBeLessThan(html.indexOf('<script type="module" src="dashboard.js">'));
    // Nothing else changed.
    expect(html.replace(block, '<script type="application/json" id="snapshot"></script>')).toBe(page.body.toString('utf8'));
  });

  it('leaves a page without the data block as it is', () => {
    const other = Buffer.from('<!doctype html><p>no block</p>');
    expect(pageWithSnapshot(other, '[]')).toBe(other);
  });
});
