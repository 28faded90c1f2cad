// The dpt dashboard: follows the loss stream on the coordinator's /monitor WebSocket and draws
// it. Messages are queued as they arrive and applied once per animation frame, so thousands of
// steps per second cost one chart redraw per frame, not one per event; tables redraw 4 times a second.
// The page arrives with the stream's history inlined (#snapshot) and draws it before `load`, so a
// page (or a headless screenshot) never waits on the socket to show the run (issue 14). The chart
// keeps every stride-th step counted from the first: the history's stride, so the live tail is as
// dense as the history, plus the newest step as a transient last point.

const uPlot = globalThis.uPlot;

/** Weight of the newest loss in the smoothed loss: ema ← ema + α·(loss − ema); as `dpt monitor`. */
const EMA_ALPHA = 0.05;
/** Chart points kept; when full every other grid point goes and the stride doubles. */
const MAX_POINTS = 20_000;
/** Throughput is measured over the step events of the last RATE_WINDOW_MS (at least 2 events). */
const RATE_WINDOW_MS = 1000;
const TABLE_REFRESH_MS = 250;
const MAX_EVENTS_LISTED = 200;
const MAX_MARKERS = 300;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5000;
/** Smallest font a tile's text is shrunk to so that it fits, px. */
const MIN_TILE_FONT_PX = 11;
const COLORS = { raw: 'rgba(47, 111, 222, 0.30)', smooth: '#2f6fde', train: '#23965a', val: '#e8871e', joined: '#23965a', left: '#d2433f', rate: '#7a4fd6' };

const token = new URLSearchParams(location.search).get('token') ?? '';
const $ = (id) => document.getElementById(id);

let run = freshRun(1);
const queue = [];
let isConnected = false;
/** Whether the page shows a state it was given (the inlined snapshot) while not connected yet. */
let hasLoadedState = false;
/**
 * History events still to come after a history notice: until they are all in, the page keeps
 * drawing what it showed before (no blank page while a reconnect's history arrives).
 */
let historyRemaining = 0;
let chartsDirty = true;
let lastTableDraw = 0;

/** Everything one session of the stream builds up; a new session (history notice) starts afresh, at the history's step stride. */
function freshRun(stride) {
  return {
    start: null,
    end: null,
    lastStep: null,
    lastEval: null,
    workers: [],
    dropped: 0,
    x: [],
    loss: [],
    ema: [],
    trainLoss: [],
    valLoss: [],
    rate: [],
    /** Chart points are the steps base, base + stride, base + 2·stride, … (base: the first step seen). */
    stride,
    base: null,
    /** Whether the series end with the newest step as a transient point, off the stride's grid. */
    hasTail: false,
    emaValue: Number.NaN,
    rateTimes: [],
    rateSteps: [],
    /** Rows up to each of those steps (estimated across steps a sampled history skipped). */
    rateRows: [],
    rowsSoFar: 0,
    rateHead: 0,
    markers: [],
    events: [],
  };
}

// ---- applying messages ------------------------------------------------------------------

function apply(message) {
  switch (message.type) {
    case 'history':
      run = freshRun(Number.isInteger(message.stepStride) && message.stepStride >= 1 ? message.stepStride : 1);
      historyRemaining = message.events;
      break;
    case 'step':
      onStep(message);
      break;
    case 'eval':
      onEval(message);
      break;
    case 'worker': {
      const step = currentStep();
      run.markers.push({ step, joined: message.event === 'joined', label: `w${message.workerId}` });
      if (run.markers.length > MAX_MARKERS) run.markers.shift();
      const detail = message.event === 'joined' ? `from ${message.address}` : `(${message.reason})`;
      logEvent(message.time, `worker ${message.workerId} ${message.event} ${detail} at step ${step}`, message.event === 'joined' ? 'joined' : 'left');
      break;
    }
    case 'run':
      if (message.event === 'start') {
        run.start = message;
        logEvent(message.time, `run started: ${message.totalSteps.toLocaleString('en-US')} steps, ${message.epochs} epochs`, '');
      } else {
        run.end = message;
        logEvent(
          message.time,
          `run ${message.outcome} after ${message.steps.toLocaleString('en-US')} steps${message.reason ? `: ${message.reason}` : ''}`,
          message.outcome === 'finished' ? 'joined' : 'left',
        );
      }
      break;
    case 'workers':
      run.workers = message.workers;
      break;
    case 'dropped':
      run.dropped += message.count;
      logEvent(message.time, `${plural(message.count, 'event')} skipped: this page fell behind`, 'left');
      break;
    default:
      break; // a kind from a newer coordinator
  }
}

function onStep(event) {
  run.lastStep = event;
  if (Number.isFinite(event.loss)) run.emaValue = Number.isNaN(run.emaValue) ? event.loss : run.emaValue + EMA_ALPHA * (event.loss - run.emaValue);
  const previous = run.rateSteps.length > 0 ? run.rateSteps[run.rateSteps.length - 1] : event.step - 1;
  run.rowsSoFar += event.rows * Math.max(1, event.step - previous);
  run.rateTimes.push(event.time);
  run.rateSteps.push(event.step);
  run.rateRows.push(run.rowsSoFar);
  while (run.rateTimes.length - run.rateHead > 2 && event.time - run.rateTimes[run.rateHead] > RATE_WINDOW_MS) run.rateHead++;
  if (run.rateHead > 4096) {
    run.rateTimes.splice(0, run.rateHead);
    run.rateSteps.splice(0, run.rateHead);
    run.rateRows.splice(0, run.rateHead);
    run.rateHead = 0;
  }
  run.base ??= event.step;
  if (run.hasTail) popPoint();
  if (isOnGrid(event.step, run.stride) && run.x.length >= MAX_POINTS) halvePoints();
  run.hasTail = !isOnGrid(event.step, run.stride);
  pushPoint(event);
}

/** Whether a step is one the chart keeps at this stride (steps between them only pass as the transient last point). */
function isOnGrid(step, stride) {
  return (step - run.base) % stride === 0;
}

function pushPoint(event) {
  run.x.push(event.step);
  run.loss.push(Number.isFinite(event.loss) ? event.loss : null);
  run.ema.push(Number.isFinite(run.emaValue) ? run.emaValue : null);
  run.trainLoss.push(null);
  run.valLoss.push(null);
  run.rate.push(rowsPerSec());
}

function popPoint() {
  for (const series of [run.x, run.loss, run.ema, run.trainLoss, run.valLoss, run.rate]) series.pop();
  run.hasTail = false;
}

/**
 * Doubles the stride: keeps the points on the new grid (by step, so a gap left by skipped events
 * cannot shift it); an epoch's values move to the kept point before them.
 */
function halvePoints() {
  const stride = run.stride * 2;
  const kept = { x: [], loss: [], ema: [], trainLoss: [], valLoss: [], rate: [] };
  for (let i = 0; i < run.x.length; i++) {
    const last = kept.x.length - 1;
    if (isOnGrid(run.x[i], stride) || last < 0) {
      for (const key of Object.keys(kept)) kept[key].push(run[key][i]);
    } else {
      kept.trainLoss[last] = run.trainLoss[i] ?? kept.trainLoss[last];
      kept.valLoss[last] = run.valLoss[i] ?? kept.valLoss[last];
    }
  }
  Object.assign(run, kept);
  run.stride = stride;
}

function onEval(event) {
  // An epoch's point sits on the last kept step (within one stride of the epoch's end), never on
  // the transient newest step: extra points would make the live tail denser than the history.
  const last = run.x.length - (run.hasTail ? 2 : 1);
  if (last >= 0) {
    run.trainLoss[last] = Number.isFinite(event.trainLoss) ? event.trainLoss : null;
    run.valLoss[last] = event.valLoss;
  }
  run.lastEval = event;
}

function currentStep() {
  if (run.lastStep !== null) return run.lastStep.step + 1;
  return run.start?.firstStep ?? 0;
}

/** Steps per second over the last RATE_WINDOW_MS of step events (0 when unknown). */
function stepsPerSec() {
  const n = run.rateTimes.length;
  if (n - run.rateHead < 2) return 0;
  const seconds = (run.rateTimes[n - 1] - run.rateTimes[run.rateHead]) / 1000;
  return seconds > 0 ? (run.rateSteps[n - 1] - run.rateSteps[run.rateHead]) / seconds : 0;
}

/** Rows per second over the same window (a smaller last batch of an epoch counts as it is). */
function rowsPerSec() {
  const n = run.rateTimes.length;
  if (n - run.rateHead < 2) return 0;
  const seconds = (run.rateTimes[n - 1] - run.rateTimes[run.rateHead]) / 1000;
  return seconds > 0 ? (run.rateRows[n - 1] - run.rateRows[run.rateHead]) / seconds : 0;
}

function logEvent(time, text, kind) {
  run.events.unshift({ time, text, kind });
  if (run.events.length > MAX_EVENTS_LISTED) run.events.pop();
}

// ---- charts -------------------------------------------------------------------------------

/** Draws a dashed vertical line, labelled, at each membership event's step. */
function markersPlugin() {
  return {
    hooks: {
      draw: [
        (u) => {
          const { ctx, bbox } = u;
          ctx.save();
          ctx.lineWidth = 1;
          ctx.setLineDash([5, 4]);
          ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
          const labelRows = new Map();
          for (const marker of run.markers) {
            const x = Math.round(u.valToPos(marker.step, 'x', true));
            if (x < bbox.left || x > bbox.left + bbox.width) continue;
            const color = marker.joined ? COLORS.joined : COLORS.left;
            ctx.strokeStyle = color;
            ctx.fillStyle = color;
            ctx.beginPath();
            ctx.moveTo(x, bbox.top);
            ctx.lineTo(x, bbox.top + bbox.height);
            ctx.stroke();
            // Markers at the same place stack their labels.
            const row = labelRows.get(x) ?? 0;
            labelRows.set(x, row + 1);
            ctx.fillText(`${marker.joined ? '+' : '−'}${marker.label}`, x + 4 * devicePixelRatio, bbox.top + (12 + 13 * row) * devicePixelRatio);
          }
          ctx.restore();
        },
      ],
    },
  };
}

function chartWidth(element) {
  return Math.max(300, element.clientWidth);
}

const lossElement = $('loss-chart');
const lossPlot = new uPlot(
  {
    width: chartWidth(lossElement),
    height: 320,
    scales: { x: { time: false } },
    axes: [{ label: 'step' }, { label: 'loss (mean NLL)', size: 60 }],
    series: [
      { label: 'step' },
      { label: 'loss', stroke: COLORS.raw, width: 1 },
      { label: 'smoothed', stroke: COLORS.smooth, width: 2 },
      { label: 'train (epoch)', stroke: COLORS.train, paths: () => null, points: { show: true, size: 5, fill: COLORS.train } },
      { label: 'validation (epoch)', stroke: COLORS.val, paths: () => null, points: { show: true, size: 5, fill: COLORS.val } },
    ],
    plugins: [markersPlugin()],
  },
  [[], [], [], [], []],
  lossElement,
);

const rateElement = $('rate-chart');
const ratePlot = new uPlot(
  {
    width: chartWidth(rateElement),
    height: 160,
    scales: { x: { time: false } },
    axes: [{ label: 'step' }, { size: 70, values: (_u, ticks) => ticks.map((t) => compact(t)) }],
    series: [{ label: 'step' }, { label: 'rows/s', stroke: COLORS.rate, width: 1.5, fill: 'rgba(122, 79, 214, 0.08)' }],
    legend: { show: false },
  },
  [[], []],
  rateElement,
);

// A tile's width changes with the window (and with a scrollbar appearing): fit the texts again then.
new ResizeObserver(() => fitTiles()).observe(document.querySelector('.tiles'));

window.addEventListener('resize', () => {
  lossPlot.setSize({ width: chartWidth(lossElement), height: 320 });
  ratePlot.setSize({ width: chartWidth(rateElement), height: 160 });
});

function drawCharts() {
  lossPlot.setData([run.x, run.loss, run.ema, run.trainLoss, run.valLoss]);
  ratePlot.setData([run.x, run.rate]);
  lossElement.dataset.points = String(run.x.length);
  lossElement.dataset.step = String(currentStep());
  lossElement.dataset.stride = String(run.stride);
}

// ---- tiles and tables ---------------------------------------------------------------------

function drawTables(now) {
  const start = run.start;
  const step = run.lastStep;
  const done = currentStep();
  const total = start?.totalSteps ?? 0;
  const state =
    run.end !== null
      ? run.end.outcome
      : !isConnected && !hasLoadedState
        ? run.x.length > 0
          ? 'reconnecting'
          : 'connecting'
        : start === null
          ? 'waiting'
          : 'training';
  document.body.dataset.state = state;
  $('state').textContent = {
    connecting: 'connecting',
    reconnecting: 'reconnecting…',
    waiting: 'waiting for workers',
    training: 'training',
    finished: 'finished',
    failed: 'failed',
  }[state];
  $('source').textContent = start === null ? '' : start.config.data;
  $('progress-bar').style.width = total > 0 ? `${Math.min(100, (100 * done) / total)}%` : '0';
  // The total goes on the sub-line: "37,500 / 50,000" did not fit the tile (issue 14).
  $('tile-step').textContent = count(done);
  $('tile-percent').textContent = total > 0 ? `of ${count(total)} · ${((100 * done) / total).toFixed(1)}%` : '';
  // Like the steps: the total on the sub-line, so that the value fits at any count.
  $('tile-epoch').textContent = step === null ? '–' : count(step.epoch + 1);
  $('tile-epochs').textContent = start === null ? '\u00a0' : `of ${count(start.epochs)}`;
  $('tile-loss').textContent = step === null ? '–' : fixed(step.loss);
  $('tile-ema').textContent = Number.isFinite(run.emaValue) ? `smoothed ${fixed(run.emaValue)}` : '';
  const evaluation = run.lastEval;
  if (evaluation === null) {
    $('tile-val').textContent = '–';
    $('tile-val-acc').textContent = '';
  } else if (evaluation.valLoss === null) {
    $('tile-val').textContent = fixed(evaluation.trainLoss);
    $('tile-val-acc').textContent = `train loss; accuracy ${fixed(evaluation.trainAccuracy)}`;
  } else {
    $('tile-val').textContent = fixed(evaluation.valLoss);
    $('tile-val-acc').textContent = `accuracy ${fixed(evaluation.valAccuracy)} (epoch ${evaluation.epoch + 1})`;
  }
  const rate = run.end === null ? stepsPerSec() : 0;
  if (run.end !== null && start !== null && run.end.time > start.time) {
    // Over: the run's average (rows estimated across steps a sampled history skipped).
    const seconds = (run.end.time - start.time) / 1000;
    const steps = run.end.steps - start.firstStep;
    $('tile-rows').textContent = `${compact(run.rowsSoFar / seconds)} rows/s`;
    $('tile-steps').textContent = `average, ${compact(steps / seconds)} steps/s`;
  } else {
    $('tile-rows').textContent = step !== null ? `${compact(rowsPerSec())} rows/s` : '–';
    $('tile-steps').textContent = step !== null ? `${compact(rate)} steps/s` : '';
  }
  $('tile-eta').textContent = run.end !== null ? 'done' : rate > 0 && total > done ? duration(((total - done) / rate) * 1000) : '–';
  $('tile-elapsed').textContent = start === null ? '' : `elapsed ${duration((run.end?.time ?? now) - start.time)}`;
  const connected = run.workers.filter((w) => w.connected).length;
  $('tile-workers').textContent = String(connected);
  $('tile-dropped').textContent =
    run.dropped > 0 ? `${plural(run.dropped, 'event')} skipped` : start === null ? '' : `${start.config.workers} awaited at start`;
  fitTiles();
  drawWorkers(now);
  drawConfig();
  drawEvents();
}

/** Shrinks a tile's value until it fits its tile (down to MIN_TILE_FONT_PX; past that it is cut with an ellipsis); sub-lines wrap instead. */
function fitTiles() {
  for (const element of document.querySelectorAll('.tile .value')) {
    element.style.fontSize = '';
    if (element.scrollWidth <= element.clientWidth) continue;
    const fullPx = Number.parseFloat(getComputedStyle(element).fontSize);
    // Text width scales with the font size; one more step down absorbs rounding.
    let px = Math.max(MIN_TILE_FONT_PX, Math.floor((fullPx * element.clientWidth) / element.scrollWidth));
    element.style.fontSize = `${px}px`;
    while (element.scrollWidth > element.clientWidth && px > MIN_TILE_FONT_PX) element.style.fontSize = `${--px}px`;
  }
}

function drawWorkers(now) {
  const table = $('workers');
  const body = table.tBodies[0];
  body.replaceChildren(
    ...run.workers.map((worker) => {
      const row = document.createElement('tr');
      row.dataset.workerId = String(worker.workerId);
      if (worker.straggler) row.className = 'straggler';
      else if (!worker.connected) row.className = 'left';
      const share = Math.round(worker.share * 100);
      const seen = worker.lastSeen === null ? 'never' : `${((now - worker.lastSeen) / 1000).toFixed(1)} s ago`;
      row.append(
        cell(String(worker.workerId)),
        cell(worker.address),
        cell(worker.connected ? compact(worker.rowsPerSec) : '–', 'num'),
        shareCell(share),
        cell(`${worker.latencyMs.toFixed(2)} ms`, 'num'),
        cell(worker.kernel ?? '–'),
        cell(count(worker.rows), 'num'),
        cell(String(worker.failures), 'num'),
        cell(worker.connected ? seen : `left · ${seen}`),
      );
      if (worker.straggler) {
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.textContent = 'straggler';
        row.cells[1].append(tag);
      }
      return row;
    }),
  );
  table.dataset.workerCount = String(run.workers.length);
}

/** "softmax regression, 10 classes: eight, five, …" or "logistic regression (0 / 1)". */
function describeModel(model) {
  if (model === undefined || model.kind === 'logistic') return 'logistic regression (classes 0 and 1)';
  const shown = model.classes.slice(0, 12).map(String).join(', ');
  return `softmax regression, ${count(model.classCount)} classes: ${shown}${model.classCount > 12 ? ', …' : ''}`;
}

function drawConfig() {
  const start = run.start;
  if (start === null) return;
  const c = start.config;
  const rows = [
    ['data', c.data],
    ['rows × features', `${count(c.rows)} × ${c.features}`],
    ['train / validation rows', `${count(c.trainRows)} / ${count(c.valRows)}`],
    // The model and its classes (issue #12); absent from older coordinators (logistic over 0 and 1).
    ['model', describeModel(c.model)],
    ...(c.classWeights === undefined ? [] : [['class weights (balanced)', c.classWeights.map((w) => w.toPrecision(4)).join(', ')]]),
    ['epochs', String(start.epochs)],
    ['batch size', String(c.batchSize)],
    ['steps (per epoch)', `${count(start.totalSteps)} (${count(start.stepsPerEpoch)})`],
    ['learning rate η', String(c.lr)],
    ['L2 λ', String(c.l2)],
    // The optimizer, the hyper-parameters it reads and the rate schedule (issue #12); absent from older coordinators.
    [
      'optimizer',
      c.optimizer === undefined
        ? 'sgd'
        : Object.entries(c.optimizer)
            .map(([key, value]) => (key === 'optimizer' ? value : `${key} ${value}`))
            .join(', '),
    ],
    ['seed', String(c.seed)],
    ['shuffle', c.shuffle ? 'yes' : 'no'],
    ['standardize', c.standardize ? 'yes' : 'no'],
    ['validation split', String(c.valFraction)],
    ['chunks per batch', String(c.chunksPerBatch)],
    ['workers awaited', String(c.workers)],
  ];
  if (start.firstStep > 0) rows.push(['resumed at step', count(start.firstStep)]);
  const body = $('config').tBodies[0];
  if (body.dataset.for === String(start.time)) return;
  body.dataset.for = String(start.time);
  body.replaceChildren(
    ...rows.map(([key, value]) => {
      const row = document.createElement('tr');
      row.append(cell(key), cell(value));
      return row;
    }),
  );
}

function drawEvents() {
  $('events').replaceChildren(
    ...run.events.map((event) => {
      const item = document.createElement('li');
      const when = document.createElement('span');
      when.className = 'when';
      when.textContent = new Date(event.time).toLocaleTimeString();
      const text = document.createElement('span');
      text.className = event.kind;
      text.textContent = event.text;
      item.append(when, text);
      return item;
    }),
  );
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function shareCell(percent) {
  const td = document.createElement('td');
  const bar = document.createElement('span');
  bar.className = 'share';
  const fill = document.createElement('span');
  fill.style.width = `${percent}%`;
  bar.append(fill);
  td.append(bar, `${percent}%`);
  return td;
}

function fixed(value) {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(4) : '–';
}

function count(value) {
  return Math.round(value).toLocaleString('en-US');
}

/** "1 event", "2 events". */
function plural(value, noun) {
  return `${count(value)} ${noun}${Math.round(value) === 1 ? '' : 's'}`;
}

function compact(value) {
  if (!Number.isFinite(value)) return '–';
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return Math.round(value).toLocaleString('en-US');
}

function duration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

// ---- the loop and the connection ------------------------------------------------------------

function drain() {
  if (queue.length === 0) return;
  for (const text of queue.splice(0)) {
    try {
      receive(JSON.parse(text), true);
    } catch (error) {
      console.error('dpt dashboard: bad message', error);
    }
  }
  chartsDirty = true;
}

/** Applies one message; counts down the history that a history notice announced. */
function receive(message, isFromSocket) {
  const isHistoryEvent = historyRemaining > 0 && message.type !== 'history';
  apply(message);
  if (isHistoryEvent) historyRemaining--;
  // What the page shows: the inlined snapshot until the socket's own history is in.
  if (isFromSocket && (isHistoryEvent || message.type === 'history') && historyRemaining === 0) document.body.dataset.source = 'live';
}

function frame(now) {
  drain();
  // While a history comes in, the page keeps showing what it had: it redraws once all of it is in.
  if (historyRemaining > 0) {
    requestAnimationFrame(frame);
    return;
  }
  if (chartsDirty) {
    chartsDirty = false;
    drawCharts();
  }
  if (now - lastTableDraw >= TABLE_REFRESH_MS) {
    lastTableDraw = now;
    // "Last seen" and elapsed age without messages: tables redraw on this timer, not per message.
    drawTables(Date.now());
  }
  requestAnimationFrame(frame);
}

// A hidden tab gets no animation frames: apply messages anyway so the queue stays small, and
// redraw once a second (a headless browser's page may count as hidden).
setInterval(() => {
  if (!document.hidden) return;
  drain();
  if (historyRemaining > 0) return;
  drawCharts();
  drawTables(Date.now());
}, 1000);

let backoffMs = FIRST_BACKOFF_MS;
function connect() {
  const url = new URL('monitor', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = token === '' ? '' : `?token=${encodeURIComponent(token)}`;
  const socket = new WebSocket(url);
  socket.onopen = () => {
    isConnected = true;
    backoffMs = FIRST_BACKOFF_MS;
  };
  socket.onmessage = (message) => queue.push(message.data);
  socket.onclose = () => {
    isConnected = false;
    hasLoadedState = false;
    // A history cut short (the run ended while it was going out): show what came.
    historyRemaining = 0;
    // The coordinator may come back (a restart) or a new run start on the same port.
    setTimeout(connect, backoffMs);
    backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
  };
}

/**
 * The stream's messages as the coordinator had them when it served this page (a history notice,
 * the history, the workers): drawn now, before `load`; the socket's history then replaces them.
 */
function applySnapshot() {
  const text = $('snapshot')?.textContent ?? '';
  if (text.trim() === '') return;
  try {
    for (const message of JSON.parse(text)) receive(message, false);
  } catch (error) {
    console.error('dpt dashboard: bad snapshot', error);
    return;
  }
  historyRemaining = 0;
  hasLoadedState = true;
  document.body.dataset.source = 'snapshot';
  drawCharts();
  drawTables(Date.now());
  chartsDirty = false;
}

applySnapshot();
connect();
requestAnimationFrame(frame);
