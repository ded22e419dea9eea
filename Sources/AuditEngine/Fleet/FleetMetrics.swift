import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// A fleet worker's own series (each organisation it works has EngineMetrics labelled with its
/// name): what it holds, how many workers it sees, leases lost and taken over.
public final class FleetMetrics: Sendable {
    private let organizations: CoreMetrics.Gauge
    private let destinations: CoreMetrics.Gauge
    private let workers: CoreMetrics.Gauge
    private let lost: CoreMetrics.Counter
    private let takeovers: CoreMetrics.Counter
    private let lastTick: CoreMetrics.Gauge
    private let previous = Mutex((lost: 0, takeovers: 0))

    public init(registry: PrometheusCollectorRegistry, worker: String) {
        let factory = PrometheusMetricsFactory(registry: registry)
        let labels = [("worker", worker)]
        organizations = EngineMetrics.gauge(registry, factory, "rbacwatch_fleet_organizations_held", "", "Organisations this worker holds a lease on.", labels: labels)
        destinations = EngineMetrics.gauge(registry, factory, "rbacwatch_fleet_destinations_held", "", "Destination queues this worker drains.", labels: labels)
        workers = EngineMetrics.gauge(registry, factory, "rbacwatch_fleet_live_workers", "", "Workers seen within the lease TTL.", labels: labels)
        lost = EngineMetrics.counter(registry, factory, "rbacwatch_fleet_leases_lost", "Leases this worker found taken over (it had stopped renewing).", labels: labels)
        takeovers = EngineMetrics.counter(registry, factory, "rbacwatch_fleet_takeovers", "Organisations this worker took over from another.", labels: labels)
        lastTick = EngineMetrics.gauge(registry, factory, "rbacwatch_fleet_last_tick_timestamp", "seconds", "When the worker last renewed its leases, as a Unix time.", labels: labels)
    }

    public func observe(_ health: FleetHealth) {
        organizations.record(health.organizations.count)
        destinations.record(health.destinations.count)
        workers.record(health.liveWorkers)
        if let tick = health.lastTick { lastTick.record(tick.timeIntervalSince1970) }
        previous.withLock { previous in
            if health.leasesLost > previous.lost { lost.increment(by: Int64(health.leasesLost - previous.lost)) }
            if health.takeovers > previous.takeovers { takeovers.increment(by: Int64(health.takeovers - previous.takeovers)) }
            previous = (health.leasesLost, health.takeovers)
        }
    }
}
