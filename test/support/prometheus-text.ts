import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** One sample of a metric family, as Prometheus' own client library parses it. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface MetricFamily {
  name: string
  type: string
  samples: Sample[]
}

// The reference parser of the text exposition format: prometheus_client's (Python), the one Prometheus' projects test against.
const PARSER = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = [{"name": f.name, "type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
            for f in text_string_to_metric_families(sys.stdin.read())]
print(json.dumps(families, allow_nan=True).replace("Infinity", "1e999"))
`

/** Whether python3 with prometheus_client is here (CI installs it: see .ci/run). */
export async function prometheusParserAvailable (): Promise<boolean> {
  return run('python3', ['-c', 'import prometheus_client.parser']).then(() => true, () => false)
}

/** Parses a /metrics answer with the reference parser; throws on anything it refuses. */
export async function parsePrometheusText (text: string): Promise<MetricFamily[]> {
  const child = run('python3', ['-c', PARSER], { maxBuffer: 64 * 1024 * 1024 })
  child.child.stdin?.end(text)
  const { stdout } = await child
  return JSON.parse(stdout) as MetricFamily[]
}
