namespace Gpt2Orleans.Grains;

/// <summary>
/// What a reply must be, as it crosses the cluster: <see cref="Kind"/> is <c>json_object</c>, <c>json_schema</c>
/// (<see cref="Source"/> the schema), <c>regex</c>, <c>choice</c> (a JSON array of strings) or <c>tool_call</c> (a
/// JSON array of <c>{"name", "parameters"}</c>: a call of one of these functions, written as <see cref="ToolCallText"/>
/// says). <see cref="Parameter"/> is the request field it came from, named in errors.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ResponseConstraint(
    [property: Id(0)] string Kind,
    [property: Id(1)] string Source,
    [property: Id(2)] string Parameter);
