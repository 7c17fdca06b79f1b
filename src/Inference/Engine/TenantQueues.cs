namespace Gpt2Orleans.Inference.Engine;

/// <summary>
/// Waiting work, one queue per tenant, served round-robin (weighted: a tenant's weight is how many it is given per
/// turn, default 1), so one tenant's burst never starves another's. Shared by the generation and classification
/// engines; not thread-safe (each engine's loop owns its queues).
/// </summary>
internal sealed class TenantQueues<T>(IReadOnlyDictionary<string, int>? weights = null) where T : class
{
    private readonly Dictionary<string, LinkedList<T>> _queues = [];
    private readonly List<string> _tenants = [];
    private int _turn;
    private int _creditsLeft;

    public int Count { get; private set; }

    public void Enqueue(string tenant, T item, bool front = false)
    {
        if (!_queues.TryGetValue(tenant, out var queue))
        {
            _queues[tenant] = queue = new LinkedList<T>();
            _tenants.Add(tenant);
        }
        if (front) queue.AddFirst(item); else queue.AddLast(item);
        Count++;
    }

    public bool Remove(string tenant, T item)
    {
        if (!_queues.TryGetValue(tenant, out var queue) || !queue.Remove(item)) return false;
        Count--;
        return true;
    }

    /// <summary>The next item in turn, from a tenant that <paramref name="canTake"/> allows now; null when there is none.</summary>
    public (string Tenant, T Item)? Peek(Func<string, bool>? canTake = null)
    {
        for (int tried = 0; tried < _tenants.Count; tried++)
        {
            string tenant = _tenants[_turn % _tenants.Count];
            var queue = _queues[tenant];
            if (queue.Count > 0 && (canTake is null || canTake(tenant)))
            {
                if (_creditsLeft <= 0) _creditsLeft = weights?.GetValueOrDefault(tenant, 1) ?? 1;
                return (tenant, queue.First!.Value);
            }
            NextTurn();
        }
        return null;
    }

    /// <summary>Takes the item <see cref="Peek"/> returned for <paramref name="tenant"/>, using one of its turn's credits.</summary>
    public T Dequeue(string tenant)
    {
        var queue = _queues[tenant];
        var item = queue.First!.Value;
        queue.RemoveFirst();
        Count--;
        if (--_creditsLeft <= 0) NextTurn();
        return item;
    }

    public IEnumerable<T> All => _queues.Values.SelectMany(q => q);

    private void NextTurn()
    {
        _turn = (_turn + 1) % Math.Max(1, _tenants.Count);
        _creditsLeft = 0;
    }
}
