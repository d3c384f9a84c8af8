// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// OpenGradient's inference precompile as their contracts declare it.
struct Number { int128 value; int128 decimals; }
struct NumberTensor { string name; Number[] values; uint32[] shape; }
struct StringTensor { string name; string[] values; }
struct JsonScalar { string name; string value; }
struct ModelInput { NumberTensor[] numbers; StringTensor[] strings; }
enum ModelInferenceMode { VANILLA, ZKML, TEE }
struct ModelInferenceRequest { ModelInferenceMode mode; string modelCID; ModelInput input; }
struct ModelOutput { NumberTensor[] numbers; StringTensor[] strings; JsonScalar[] jsons; bool is_simulation_result; }

interface OGInference {
    function runModelInference(ModelInferenceRequest memory request) external returns (ModelOutput memory);
}

// Runs one model on a row of numbers (value * 10^-decimals each).
contract Classifier {
    OGInference constant OG = OGInference(0x00000000000000000000000000000000000000F4);
    string public model;

    constructor(string memory m) {
        model = m;
    }

    function predict(int128[] memory values, int128 decimals)
        external
        returns (int128[] memory out, int128[] memory outDecimals, bool simulated)
    {
        Number[] memory nums = new Number[](values.length);
        for (uint256 i = 0; i < values.length; i++) {
            nums[i] = Number(values[i], decimals);
        }
        uint32[] memory shape = new uint32[](2);
        shape[0] = 1;
        shape[1] = uint32(values.length);
        NumberTensor[] memory ts = new NumberTensor[](1);
        ts[0] = NumberTensor("x", nums, shape);
        ModelOutput memory o = OG.runModelInference(
            ModelInferenceRequest(ModelInferenceMode.VANILLA, model, ModelInput(ts, new StringTensor[](0)))
        );
        Number[] memory r = o.numbers[0].values;
        out = new int128[](r.length);
        outDecimals = new int128[](r.length);
        for (uint256 i = 0; i < r.length; i++) {
            out[i] = r[i].value;
            outDecimals[i] = r[i].decimals;
        }
        simulated = o.is_simulation_result;
    }
}
